#pragma once
// Time is injected (STYLE.md rule 10): components take a Clock*, tests pass a FakeClock
// and advance it instead of sleeping. Code that waits for a moment (a deadline, the next
// heartbeat) waits through its Clock, so that advancing a FakeClock wakes it.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rc {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  int64_t NowMs() const { return absl::ToUnixMillis(Now()); }
  // Called with `mu` held; returns with it held, once `cond` holds or this clock has
  // reached `deadline`, and says whether `cond` holds. `mu` is released while waiting,
  // as by any Await. This one is absl::Mutex::AwaitWithDeadline (real time).
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  static RealClock* Get();
};

// Time stands still until Advance. Waits through it (AwaitWithDeadline) end when an
// Advance reaches their deadline, or as soon as their condition holds.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_ns_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(now_ns_.load()); }
  // Moves time forward and wakes every waiter, whose wait then ends if its deadline is
  // reached. Must not be called with a waiter's mutex held.
  void Advance(absl::Duration d) ABSL_LOCKS_EXCLUDED(waiters_mu_);
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond, absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_LOCKS_EXCLUDED(waiters_mu_);
  // Blocks (for real, up to `limit`) until at least `n` threads wait through this clock:
  // a test advances once the code under test has read the time and waits. True when
  // they do.
  bool WaitForWaiters(int n, absl::Duration limit = absl::Seconds(10)) const ABSL_LOCKS_EXCLUDED(waiters_mu_);

 private:
  // Nanoseconds since the Unix epoch: read lock-free, because waiters read it inside
  // their wait condition, under their own mutex.
  std::atomic<int64_t> now_ns_;
  // The mutex of each thread waiting through this clock (once per waiter). Advance locks
  // and unlocks each, which makes absl re-check that waiter's condition; it holds
  // waiters_mu_ meanwhile, so a waiter cannot return (and free its mutex) before.
  // Order: waiters_mu_ before a waiter's mutex; a waiter never holds its mutex while
  // taking waiters_mu_.
  mutable absl::Mutex waiters_mu_;
  mutable std::vector<absl::Mutex*> waiters_ ABSL_GUARDED_BY(waiters_mu_);
};

// RFC 3339 UTC with milliseconds ("2026-11-22T10:04:05.123Z"); "" for 0.
std::string FormatTimeMs(int64_t unix_ms);

}  // namespace rc
