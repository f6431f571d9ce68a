#pragma once
// Where a running attempt receives its completion from outside the worker
// (CoordinatorMessage.completions: a callback made with the attempt's task token, see
// ClientService.CompleteTask). The Executor holds one per running attempt and delivers
// into it; a handler that waits for a callback (browser_session, complete_on "callback")
// polls it beside its stop token. The first delivery wins; later ones are ignored (a
// client retrying its callback must not change the outcome).

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::worker {

struct ExternalCompletion {
  ::retire_cluster::v1::TaskStatus status = ::retire_cluster::v1::TASK_STATUS_SUCCESS;  // SUCCESS or FAILED
  std::string result = "{}";  // JSON object text
  std::string error_message;  // with FAILED
};

class CompletionInbox {
 public:
  // Keeps the first completion; false (and nothing changes) when one was delivered before.
  bool Deliver(ExternalCompletion completion) {
    absl::MutexLock lock(&mu_);
    if (completion_.has_value()) return false;
    completion_ = std::move(completion);
    return true;
  }
  // The delivered completion, if any (it stays: Get is idempotent).
  std::optional<ExternalCompletion> Get() const {
    absl::MutexLock lock(&mu_);
    return completion_;
  }

 private:
  mutable absl::Mutex mu_;
  std::optional<ExternalCompletion> completion_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::worker
