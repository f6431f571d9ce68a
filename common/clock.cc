#include "common/clock.h"

#include <algorithm>
#include <string>

namespace rc {

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();
  return clock;
}

void FakeClock::Advance(absl::Duration d) {
  now_ns_.fetch_add(absl::ToInt64Nanoseconds(d));
  absl::MutexLock lock(&waiters_mu_);
  for (absl::Mutex* mu : waiters_) {
    // Releasing a mutex makes absl evaluate the conditions its waiters wait for.
    mu->Lock();
    mu->Unlock();
  }
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const {
  // Registered without `mu` held (lock order above); the wait re-checks everything.
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.push_back(mu);
  }
  mu->Lock();
  auto done = [&] { return cond.Eval() || Now() >= deadline; };
  mu->Await(absl::Condition(&done));
  // As absl's AwaitWithDeadline: whether the condition held when the wait ended (another
  // thread may change it while `mu` is released below to deregister).
  const bool met = cond.Eval();
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), mu));
  }
  mu->Lock();
  return met;
}

bool FakeClock::WaitForWaiters(int n, absl::Duration limit) const {
  absl::MutexLock lock(&waiters_mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) { return static_cast<int>(waiters_.size()) >= n; };
  return waiters_mu_.AwaitWithTimeout(absl::Condition(&enough), limit);
}

std::string FormatTimeMs(int64_t unix_ms) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

}  // namespace rc
