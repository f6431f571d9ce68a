#pragma once
// The mission executor's API on the HTTP bridge (DESIGN.md "Missions over HTTP"): its
// request and response schemas (Mission, MissionResult, /v1/browser/control) mapped to
// and from tasks. A mission runs as a `python_script` task (with a `browser` block when
// it wants the browser); browser control as a `browser` task (issue 17). Pure functions here; the
// routes (BridgeRoutes::ExecuteMission, BrowserControl) are in missions.cc.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json_view.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator::http {

inline constexpr double kDefaultMissionTimeoutSeconds = 300;
// The core's limit on requirements.timeout_seconds, checked here to name `timeout`.
inline constexpr double kMaxMissionTimeoutSeconds = 30 * 24 * 3600;
// How much longer than the mission's own timeout POST /v1/missions/execute waits for
// its end before answering 202 with the task id: room to queue behind other tasks and to
// build the mission's virtualenv (pip) before the script's clock starts.
inline constexpr double kMissionQueueAllowanceSeconds = 300;

// A browser control task's timeout, and how long the request waits for its end.
inline constexpr double kBrowserTaskTimeoutSeconds = 60;
inline constexpr double kBrowserWaitSeconds = 120;

struct Mission {
  std::string mission_id;
  bool browser_interaction = false;
  double timeout_seconds = kDefaultMissionTimeoutSeconds;
  // The python_script task that runs it: payload {code, requirements, keep_alive,
  // timeout} and, with browser_interaction, "browser": {"profile": "default",
  // "keep_alive": keep_alive} (the worker's persistent browser, RC_CDP_URL in the script's
  // environment), requirements.timeout_seconds and target_device_id, max_retries 0 (a
  // mission runs at most once), metadata + mission_id.
  ::retire_cluster::v1::TaskSpec spec;
};

// The Mission schema: mission_id (required, a non-empty string), code (required, a
// string), requirements (strings), browser_interaction and keep_alive (booleans),
// target_device_id (a string or an integer), timeout (seconds > 0, default 300),
// metadata (an object; values kept as strings, other JSON values as their JSON text).
// null stands for an absent optional field (clients serialise unset fields so).
// INVALID_ARGUMENT naming the field, also for an unknown field.
absl::StatusOr<Mission> MissionSpecFromJson(const nlohmann::json& j);

// The MissionResult of a task that ended: success (status success), stdout, stderr,
// exit_code, execution_time, error (null on success, else the task's error message or
// "task ended <status>"), metadata {task_id, device_id, status, attempts}.
Json MissionResultJson(absl::string_view mission_id, const ::retire_cluster::v1::Task& task);
// The same shape for a mission not (yet) ended or not run: success false, exit_code and
// execution_time null, `error` saying why and where to wait; metadata as above.
Json MissionPendingJson(absl::string_view mission_id, const ::retire_cluster::v1::Task& task,
                        const std::string& error);

// The same shape for a mission refused before any task was made: task_id and status null.
Json MissionRefusedJson(absl::string_view mission_id, const std::string& error);

struct BrowserRequest {
  std::string operation;    // start | stop | status
  std::optional<int> port;  // accepted for the executor's schema; the worker picks the CDP port
  std::string target_device_id;
};

// {"operation": "start"|"stop"|"status", "port"?: 1..65535, "target_device_id"?: string
// or integer}; INVALID_ARGUMENT naming the field or the unknown operation.
absl::StatusOr<BrowserRequest> BrowserRequestFromJson(const nlohmann::json& j);
// The `browser` task for it: payload {"operation", "profile": "default"}.
::retire_cluster::v1::TaskSpec BrowserTaskSpec(const BrowserRequest& r);
// {"success", "is_running", "cdp_url", "message", "task_id"} from the browser task: at its
// end from its result {running, cdp_url, ...}; before it, success false and `message`
// (why the answer comes now).
Json BrowserResultJson(const BrowserRequest& r, const ::retire_cluster::v1::Task& task,
                       const std::string& message_if_unfinished);
// {"success": false, "is_running": false, "cdp_url": null, "message": message}.
Json BrowserRefusedJson(const std::string& message);

}  // namespace rc::coordinator::http
