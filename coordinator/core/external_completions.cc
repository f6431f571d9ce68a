// Completion of a running attempt from outside (DESIGN.md "Browser automation": the
// browser-task runner's callback). The core only routes it: the attempt must be the
// task's current one and RUNNING, and the completion goes to the worker running it on
// that worker's stream. Nothing is written and no status changes here; the worker ends
// the attempt and reports it as a normal (signed) TaskFinished, so the task's end keeps
// one path (TaskLifecycle via FinishLocked) and a completion the worker never acts on
// (its handler does not wait for callbacks) changes nothing.
#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

absl::Status NotRunning(const std::string& task_id, pb::TaskStatus status) {
  if (IsTerminal(status)) {
    return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " has ended (", StatusName(status),
                                                      "): only a running attempt can be completed"));
  }
  return absl::FailedPreconditionError(absl::StrCat("task ", task_id, " is ", StatusName(status),
                                                    ", not running: only a running attempt can be completed"));
}

}  // namespace

absl::StatusOr<int32_t> Coordinator::CompleteAttempt(pb::CompleteAttempt completion) {
  std::string device;
  absl::StatusOr<int32_t> routed =
      Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<int32_t> {
        if (shut_down_) return absl::UnavailableError("coordinator is shutting down");
        const std::string& id = completion.task_id();
        const TaskEntry* e = tasks_.Find(id);
        // Not in memory: finished and evicted (a valid token's task was in memory moments ago).
        if (e == nullptr) {
          return absl::FailedPreconditionError(
              absl::StrCat("task ", id, " has ended: only a running attempt can be completed"));
        }
        const pb::Task& t = e->task;
        if (t.status() != pb::TASK_STATUS_RUNNING) return NotRunning(id, t.status());
        if (t.attempts() != completion.attempt()) {
          return absl::FailedPreconditionError(absl::StrCat("task ", id, " runs attempt ", t.attempts(),
                                                            ", not attempt ", completion.attempt(),
                                                            " (the token's): that attempt has ended"));
        }
        device = t.worker_device_id();
        WorkerEntry* w = workers_.Find(device);
        if (w == nullptr || w->link == nullptr) {
          return absl::UnavailableError(absl::StrCat("the worker running task ", id, " (", device,
                                                     ") is disconnected; retry the completion"));
        }
        *fx.MessageFor(w->link).add_completions() = completion;
        return completion.attempt();
      });
  if (routed.ok()) {
    spdlog::info("task {} attempt {}: completion ({}) handed to worker {}", completion.task_id(), *routed,
                 std::string(StatusName(completion.status())), device);
  }
  return routed;
}

void Coordinator::SetCallbackEndpoint(int32_t http_port, bool http_tls) {
  absl::MutexLock lock(&mu_);
  callback_http_port_ = http_port;
  callback_http_tls_ = http_tls;
}

}  // namespace rc::coordinator
