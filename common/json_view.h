#pragma once
// The JSON shapes users see: the CLI's --json output and (later) the HTTP bridge.
// One place builds them so the two surfaces never drift apart.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc {

nlohmann::json TaskToJson(const ::retire_cluster::v1::Task& task);
nlohmann::json RequirementsToJson(const ::retire_cluster::v1::Requirements& r);
nlohmann::json WorkerToJson(const ::retire_cluster::v1::Worker& worker);
nlohmann::json StatsToJson(const ::retire_cluster::v1::Stats& stats);

// OK when `text` is one JSON object; INVALID_ARGUMENT naming `what` and the parse error
// otherwise. Does not build a document tree.
absl::Status ValidateJsonObject(absl::string_view text, absl::string_view what);

// `text` parsed (must be valid JSON; invalid text is returned as a JSON string so that
// a view never throws).
nlohmann::json ParseOrString(absl::string_view text);

}  // namespace rc
