// ClientApi::CompleteTask (DESIGN.md "Browser automation"): a running attempt completed
// from outside, authenticated by the attempt's own task token. The token is the only
// credential that proves the caller is the program the attempt started (the browser of a
// browser_session, or whatever the task handed RETIRE_CLUSTER_TOKEN to); a client token,
// even an admin's, proves nothing about that attempt, so no role may complete a task
// (an admin who wants a task gone cancels it).
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/json_view.h"
#include "common/status_macros.h"
#include "common/task_names.h"
#include "coordinator/api/client_api.h"

namespace rc::coordinator {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status CheckTaskId(absl::string_view id) {
  constexpr size_t kMaxIdLength = 128;
  if (id.empty()) return Bad("task_id", "required");
  if (id.size() > kMaxIdLength) return Bad("task_id", absl::StrCat("a task id is at most ", kMaxIdLength, " characters"));
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '-' && c != '_' && c != '.') {
      return Bad("task_id", absl::StrCat("'", id, "' is not a task id"));
    }
  }
  return absl::OkStatus();
}

// "" (or only spaces) means {}; anything else must be one JSON object, nested at most
// kMaxJsonDepth deep (the worker and every reader parse it again).
absl::StatusOr<std::string> ResultObject(const std::string& text) {
  if (text.size() > ClientApi::kMaxCompletionResultBytes) {
    return Bad("result", absl::StrCat("at most ", ClientApi::kMaxCompletionResultBytes, " bytes, got ", text.size()));
  }
  RETURN_IF_ERROR(ValidateJsonObject(text, "result"));
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::string("{}");
  return text;
}

}  // namespace

absl::Status AllowCompletion(const Principal& who) {
  if (who.task.has_value()) return absl::OkStatus();
  constexpr absl::string_view kOnly =
      "completing a task takes that task's own token (RETIRE_CLUSTER_TOKEN, given to its running attempt)";
  if (who.name.empty()) return absl::PermissionDeniedError(absl::StrCat(kOnly, "; this call carries no task token"));
  return absl::PermissionDeniedError(
      absl::StrCat(kOnly, "; a client token ('", who.name, "', role ", RoleName(who.role), ") may not"));
}

absl::StatusOr<pb::CompleteTaskResponse> ClientApi::CompleteTask(const Principal& who,
                                                                 const pb::CompleteTaskRequest& request,
                                                                 absl::string_view error_field) {
  RETURN_IF_ERROR(AllowCompletion(who));
  RETURN_IF_ERROR(CheckTaskId(request.task_id()));
  if (request.task_id() != who.task->task_id) {
    return absl::PermissionDeniedError(absl::StrCat("a task token may complete only its own task (",
                                                    who.task->task_id, "), not ", request.task_id()));
  }
  const pb::TaskStatus status = request.status();
  if (status == pb::TASK_STATUS_UNSPECIFIED) return Bad("status", "required, success or failed");
  if (status != pb::TASK_STATUS_SUCCESS && status != pb::TASK_STATUS_FAILED) {
    const std::string got = pb::TaskStatus_IsValid(status) ? std::string(StatusName(status)) : absl::StrCat(static_cast<int>(status));
    return Bad("status", absl::StrCat("expected success or failed, got ", got));
  }
  ASSIGN_OR_RETURN(std::string result, ResultObject(request.result()));
  std::string error = request.error_message();
  if (status == pb::TASK_STATUS_SUCCESS && !error.empty()) return Bad(error_field, "only with status failed");
  if (error.size() > kMaxCompletionErrorBytes) {
    return Bad(error_field, absl::StrCat("at most ", kMaxCompletionErrorBytes, " bytes, got ", error.size()));
  }
  if (status == pb::TASK_STATUS_FAILED && error.empty()) error = "failed by its callback (no error given)";

  pb::CompleteAttempt completion;
  completion.set_task_id(request.task_id());
  completion.set_attempt(who.task->attempt);
  completion.set_status(status);
  completion.set_result(std::move(result));
  completion.set_error_message(std::move(error));
  ASSIGN_OR_RETURN(int32_t attempt, core_->CompleteAttempt(std::move(completion)));
  pb::CompleteTaskResponse response;
  response.set_task_id(request.task_id());
  response.set_attempt(attempt);
  return response;
}

}  // namespace rc::coordinator
