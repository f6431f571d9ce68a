#pragma once
// Tells a running handler to stop: set by cancel, or by reaching the attempt's
// deadline. Waiting on it is how cooperative handlers sleep. The deadline is a moment of
// the token's clock (the Executor's), which handlers also read time from.

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace rc::worker {

class StopToken {
 public:
  explicit StopToken(absl::Time deadline, const Clock* clock = RealClock::Get())
      : clock_(clock), deadline_(deadline) {}

  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  bool cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  absl::Time deadline() const { return deadline_; }
  const Clock& clock() const { return *clock_; }
  bool expired() const { return clock_->Now() >= deadline_; }
  bool stopped() const { return cancelled() || expired(); }

  // Waits until `until`, the deadline or a cancel, whichever is first. True when the
  // token stopped (cancel or deadline) before `until`.
  bool WaitUntil(absl::Time until) const {
    absl::Time limit = std::min(until, deadline_);
    absl::MutexLock lock(&mu_);
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&cancelled_), limit);
    return cancelled_ || (clock_->Now() >= deadline_ && until >= deadline_);
  }

 private:
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  const absl::Time deadline_;
};

}  // namespace rc::worker
