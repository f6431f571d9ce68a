#pragma once
// Runs assigned attempts on a fixed pool of `slots` threads (no thread per task).
// Each attempt gets a StopToken with its deadline (on the injected clock); cancel stops
// it through the same token. What an attempt comes to is decided by the decorator chain
// it runs through (attempt_decorators.h); the Executor only holds, queues, cancels and
// reports.

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "retire_cluster/v1/worker_service.pb.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "worker/execution/attempt_decorators.h"
#include "worker/execution/attempt_executor.h"
#include "worker/handler.h"

namespace rc::worker {

class Executor {
 public:
  // `capabilities`: what handlers may learn about the worker (system_info), and whose
  // tasks it serves. `clock` sets deadlines and times attempts.
  Executor(int slots, const HandlerRegistry* handlers, EventSink* sink, pb::Capabilities capabilities,
           const Clock* clock = RealClock::Get());
  ~Executor();

  // Queues an attempt (or, for an Instant handler, runs it now on the calling thread);
  // one already held is ignored. A newer attempt of a task whose
  // older attempt is still stopping here runs beside it (each has its own slot).
  void Assign(const pb::Assignment& assignment);
  // Stops that attempt if held (queued ones finish CANCELLED at once); else no-op.
  void Cancel(const std::string& task_id, int attempt);
  // Attempts held: queued or running.
  std::vector<pb::RunningAttempt> HeldAttempts() const;
  int running() const;
  // Attempts finished here, by outcome; how long they ran.
  int64_t finished(pb::TaskStatus status) const { return metrics_.finished(status); }
  const Histogram& run_time() const { return metrics_.run_time(); }
  // True once no attempt is held; false if `deadline` (on the clock) passes first.
  bool WaitIdle(absl::Time deadline) const;
  // Stops every attempt without reporting (the coordinator requeues them) and joins
  // the slot threads. Idempotent.
  void Stop();

 private:
  using AttemptKey = std::pair<std::string, int>;  // task id, attempt
  struct HeldAttempt {
    std::shared_ptr<StopToken> token;  // set when it starts
    bool cancelled = false;
  };
  void SlotLoop();
  // Marks the attempt started (it must be held) and returns its stop token.
  std::shared_ptr<StopToken> StartLocked(const pb::Assignment& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunOne(const pb::Assignment& a, const std::shared_ptr<StopToken>& token);

  const HandlerRegistry* const handlers_;
  EventSink* const sink_;
  const pb::Capabilities capabilities_;
  const Clock* const clock_;
  AttemptMetrics metrics_;
  const std::unique_ptr<AttemptExecutor> chain_;  // reads capabilities_, clock_, metrics_

  mutable absl::Mutex mu_;
  std::deque<pb::Assignment> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<AttemptKey, HeldAttempt> held_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace rc::worker
