#pragma once
// The JSON shapes users see: the CLI's --json output and (later) the HTTP bridge.
// One place builds them so the two surfaces never drift apart.

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc {

// Objects keep the order fields are added in (task_id first), as users read them.
using Json = nlohmann::ordered_json;

Json TaskToJson(const ::retire_cluster::v1::Task& task);
Json RequirementsToJson(const ::retire_cluster::v1::Requirements& r);
Json WorkerToJson(const ::retire_cluster::v1::Worker& worker);
Json StatsToJson(const ::retire_cluster::v1::Stats& stats);

// Arrays and objects nested deeper than this are refused where JSON comes in, and shown
// as text: printing JSON (dump) recurses once per level, and the ~100,000 levels that fit
// in a 1 MiB payload overflow a thread's stack.
inline constexpr int kMaxJsonDepth = 512;

// OK when `text` is one JSON object nested at most kMaxJsonDepth deep; INVALID_ARGUMENT
// naming `what` and the problem otherwise.
absl::Status ValidateJsonObject(absl::string_view text, absl::string_view what);

// INVALID_ARGUMENT naming `what` when `j` nests arrays and objects deeper than
// kMaxJsonDepth (checked without recursion).
absl::Status CheckJsonDepth(const nlohmann::json& j, absl::string_view what);

// `text` parsed (must be valid JSON; invalid text, or JSON nested deeper than
// kMaxJsonDepth, is returned as a JSON string so that a view never throws or overflows).
Json ParseOrString(absl::string_view text);

}  // namespace rc
