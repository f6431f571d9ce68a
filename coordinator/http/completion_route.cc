#include "coordinator/http/completion_route.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/http/routes.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The body as the gRPC request. What the API checks itself (status values, result an
// object, error only with failed) is passed through for it to refuse, so both transports
// answer a mistake with the same words; only JSON shapes the proto cannot carry are
// refused here.
absl::StatusOr<pb::CompleteTaskRequest> RequestFromJson(const std::string& task_id, const json& j) {
  if (!j.is_object()) return Bad("body", "expected an object {\"status\": \"success\"|\"failed\", \"result\"?, \"error\"?}");
  pb::CompleteTaskRequest r;
  r.set_task_id(task_id);
  for (const auto& [key, value] : j.items()) {
    if (key == "status") {
      if (value.is_null()) continue;  // required: the API says so
      if (!value.is_string()) return Bad("status", "expected \"success\" or \"failed\"");
      absl::StatusOr<pb::TaskStatus> s = ParseStatus(value.get<std::string>());
      if (!s.ok()) return Bad("status", absl::StrCat("expected success or failed, got '", value.get<std::string>(), "'"));
      r.set_status(*s);
    } else if (key == "result") {
      if (!value.is_null()) r.set_result(JsonText(value));
    } else if (key == "error") {
      if (value.is_null()) continue;
      if (!value.is_string()) return Bad("error", "expected a string");
      r.set_error_message(value.get<std::string>());
    } else {
      return Bad(key, "unknown field (expected status, result and error)");
    }
  }
  return r;
}

}  // namespace

void CompleteTaskRoute(ClientApi* api, const std::string& task_id, const HttpRequest& req,
                       const std::shared_ptr<Responder>& res, const Principal& who) {
  absl::StatusOr<json> body = JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  absl::StatusOr<pb::CompleteTaskRequest> request = RequestFromJson(task_id, *body);
  if (!request.ok()) return res->Reply(StatusResponse(request.status()));
  absl::StatusOr<pb::CompleteTaskResponse> done = api->CompleteTask(who, *request, "error");
  if (!done.ok()) return res->Reply(StatusResponse(done.status()));
  res->Reply(JsonResponse(202, Json{{"task_id", done->task_id()}, {"attempt", done->attempt()}, {"accepted", true}}));
}

}  // namespace rc::coordinator::http
