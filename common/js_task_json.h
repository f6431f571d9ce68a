#pragma once
// Published JavaScript tasks as users see them in JSON (DESIGN.md "JavaScript tasks"): the
// HTTP bridge's answers and the CLI's --json output are built here, so the two never drift
// apart. Field names are the proto's (client_service.proto JsTask), snake_case.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json_view.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/client_service.pb.h"

namespace rc {

// {"name", "version", "versions", "sha256", "description", "params": [{"name", "type",
// "description", "optional"}], "returns", "owner", "created_at_ms", "code_bytes"} and
// "code" when the task carries its code (GetJsTask's answer; lists leave it out).
Json JsTaskToJson(const ::retire_cluster::v1::JsTask& task);
// {"task": JsTaskToJson, "unchanged": bool}: POST /js-tasks and `tasks publish --json`.
Json PublishJsTaskJson(const ::retire_cluster::v1::PublishJsTaskResponse& r);
// {"tasks": [...]}: GET /js-tasks and `tasks list --json`.
Json JsTaskListJson(const std::vector<::retire_cluster::v1::JsTask>& tasks);

// The payload of a `js` task that runs the published task `name`:
// {...`extra`'s fields (e.g. "memory_mb"; the coordinator checks them), "name", "version"
// (only when > 0; 0 = the latest at submit), "input"}; the arguments replace fields of
// `extra` with their names. INVALID_ARGUMENT naming `input_field` when `input` nests
// deeper than kMaxJsonDepth.
absl::StatusOr<std::string> JsRunPayload(absl::string_view name, int version, const nlohmann::json& input,
                                         absl::string_view input_field,
                                         const nlohmann::json& extra = nlohmann::json::object());

}  // namespace rc
