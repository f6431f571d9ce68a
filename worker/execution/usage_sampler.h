#pragma once
// Live CPU and memory of running attempts (DESIGN.md "Browser automation": resource_usage
// refreshed every second, for every task that runs a process). A handler that starts a
// process reports its pid (TaskContext::on_process_start -> TaskProgress with the pid);
// UsageSampling, a decorator just around the handler, hands that pid to the UsageSampler
// and takes it back when the attempt ends. The sampler's one thread reads /proc once per
// interval for all of them (process_sampler.h: the pid's whole process group) and sends
// TaskProgress{task_id, attempt, pid, usage} to the EventSink.
//
// Design assumptions: the pid is reported right when the process starts (RunProcess calls
// on_start after exec), so the first sample's CPU percentage is measured from then, with
// 0 CPU seconds at the report; each later one covers the interval since the previous
// sample. Time is the injected clock's: the sampler waits an interval through it (only
// while it tracks something, so an idle worker's FakeClock has no extra waiter), and tests
// drive it by advancing a FakeClock.

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "worker/execution/attempt_executor.h"

namespace rc::worker {

class UsageSampler {
 public:
  // Starts the sampling thread. `sink` and `clock` outlive the sampler; `proc_root` is
  // /proc except in tests.
  UsageSampler(EventSink* sink, const Clock* clock, absl::Duration interval = absl::Seconds(1),
               std::string proc_root = "/proc");
  ~UsageSampler();
  UsageSampler(const UsageSampler&) = delete;
  UsageSampler& operator=(const UsageSampler&) = delete;

  // Samples `pid`'s process group for that attempt from now on, replacing a process the
  // attempt reported before (a handler that runs several in turn). pid <= 0 is ignored.
  void Track(const std::string& task_id, int attempt, int pid);
  // Stops sampling that attempt. Once it returns no sample of the attempt is sent any
  // more (it waits for a round in flight), so its final report comes after its last
  // sample. No-op when not tracked.
  void Untrack(const std::string& task_id, int attempt);
  // Samples every tracked attempt now and sends what it found (the thread calls it each
  // interval). An attempt whose process group has no process left is dropped.
  void SampleNow();
  // Attempts sampled now.
  int tracked() const;
  // Ends the thread (no more rounds of its own); idempotent.
  void Stop();

 private:
  using AttemptKey = std::pair<std::string, int>;
  struct Tracked {
    int pid = 0;
    double cpu_seconds = 0;  // at `at`: the baseline of the next sample's percentage
    absl::Time at;
  };
  void Loop();

  EventSink* const sink_;
  const Clock* const clock_;
  const absl::Duration interval_;
  const std::string proc_root_;

  // Held for a whole round (reading /proc, sending): Untrack waits for it.
  absl::Mutex round_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<AttemptKey, Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool warned_ ABSL_GUARDED_BY(round_mu_) = false;  // a /proc failure is logged once
  std::thread thread_;
  absl::Mutex join_mu_;
};

// The decorator: forwards every event, and on a handler's pid report (TaskProgress with a
// pid and no usage) starts sampling that process; stops when the handler returns.
class UsageSampling final : public AttemptExecutor {
 public:
  UsageSampling(UsageSampler* sampler, std::unique_ptr<AttemptExecutor> inner)
      : sampler_(sampler), inner_(std::move(inner)) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  UsageSampler* const sampler_;
  const std::unique_ptr<AttemptExecutor> inner_;
};

}  // namespace rc::worker
