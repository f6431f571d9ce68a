#pragma once
// Published JavaScript tasks on the HTTP bridge (DESIGN.md "JavaScript tasks"):
//   GET    /js-tasks                  -> {"tasks": [...]} (latest versions, no code)
//   POST   /js-tasks {"code", "name"?} -> 201 {"task", "unchanged": false}; 200 when unchanged
//   GET    /js-tasks/{name}?version=N -> the task with its code (latest without version)
//   DELETE /js-tasks/{name}?version=N -> {"removed_versions": n} (every version without)
//   POST   /js-tasks/{name}/run[?wait=S] {"input"?, "version"?, "memory_mb"?, and POST /tasks'
//          fields but task_type and payload} -> 201 {"task_id", "status"} like POST /tasks; with
//          wait, 200 with the task once it ended or after S seconds (as GET /tasks/{id}/wait).
// Each is one ClientApi call (JSON names = the proto's; the API words the errors, so gRPC and
// HTTP refuse alike). Holds no state; nothing here waits on a thread.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "coordinator/api/client_api.h"
#include "coordinator/http/http_types.h"

namespace rc::coordinator::http {

enum class JsTaskRoute { kList, kPublish, kGet, kRemove, kRun };

struct JsTaskMatch {
  JsTaskRoute route;
  ClientOp op;       // what ClientApi::Admit is asked
  std::string name;  // the {name} of the path ("" for list and publish)
};

// The route of `method` on the path split at '/' (`segments[0]` is the empty text before
// the leading '/'); nullopt when it is none of the above.
std::optional<JsTaskMatch> MatchJsTaskRoute(absl::string_view method, const std::vector<absl::string_view>& segments);

// Answers `req` for an admitted caller `who`. `api` and `deferrer` outlive the request.
void HandleJsTaskRoute(const JsTaskMatch& match, ClientApi* api, Deferrer* deferrer, const HttpRequest& req,
                       const std::shared_ptr<Responder>& res, const Principal& who);

}  // namespace rc::coordinator::http
