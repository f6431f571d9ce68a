#pragma once
// How long a worker waits before reconnecting: exponential from `initial`, doubling per
// failed connection up to `max`, back to `initial` after one that registered. Each wait
// is the current step scaled by a jitter in [0.5, 1], so that many workers that lost the
// coordinator together do not reconnect in step. A pure policy: no clock, no randomness
// of its own (the Session draws the jitter).

#include <algorithm>

#include "absl/time/time.h"

namespace rc::worker {

class ReconnectBackoff {
 public:
  ReconnectBackoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max), step_(initial) {}

  // The wait before the next connection; `jitter` is clamped to [0.5, 1]. The step
  // after it doubles (up to max).
  absl::Duration Next(double jitter) {
    const absl::Duration wait = step_ * std::clamp(jitter, 0.5, 1.0);
    step_ = std::min(step_ * 2, max_);
    return wait;
  }
  // After a connection that registered: the next wait is short again.
  void Reset() { step_ = initial_; }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration step_;
};

}  // namespace rc::worker
