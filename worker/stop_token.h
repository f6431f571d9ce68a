#pragma once
// Tells a running handler to stop: set by cancel, or by reaching the attempt's
// deadline. Waiting on it is how cooperative handlers sleep.

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rc::worker {

class StopToken {
 public:
  explicit StopToken(absl::Time deadline) : deadline_(deadline) {}

  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  bool cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  absl::Time deadline() const { return deadline_; }
  bool expired() const { return absl::Now() >= deadline_; }
  bool stopped() const { return cancelled() || expired(); }

  // Waits until `until`, the deadline or a cancel, whichever is first. True when the
  // token stopped (cancel or deadline) before `until`.
  bool WaitUntil(absl::Time until) const {
    absl::Time limit = std::min(until, deadline_);
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&cancelled_), limit);
    return cancelled_ || (absl::Now() >= deadline_ && until >= deadline_);
  }

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  const absl::Time deadline_;
};

}  // namespace rc::worker
