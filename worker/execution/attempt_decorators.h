#pragma once
// The decorators every attempt runs through, outermost first (MakeAttemptChain):
//   MetricsDecorator  counts the outcome and observes the run time
//   TimingDecorator   reads the clock around the attempt: started_at, finished_at, run time
//   OutcomeRules      decides what the coordinator hears: Started, then the status
//   SubmitterGuard    refuses a task whose owner this worker does not serve
//   HandlerDispatch   the handler for the task type (the leaf)
// Each does one thing and knows nothing of the others' rules; tests build a chain of
// their own around a fake leaf.

#include <array>
#include <atomic>
#include <memory>

#include "common/clock.h"
#include "common/histogram.h"
#include "worker/execution/attempt_executor.h"

namespace rc::worker {

// The leaf: runs the handler registered for the task type. NOT_FOUND naming the type when
// this worker has none; otherwise what the handler returned (handler_ran set).
// `sockets` (nullptr: none) opens each attempt's socket to the cluster when its handler
// starts a process (TaskContext::open_socket).
class HandlerDispatch final : public AttemptExecutor {
 public:
  explicit HandlerDispatch(const HandlerRegistry* handlers, TaskSockets* sockets = nullptr)
      : handlers_(handlers), sockets_(sockets) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  const HandlerRegistry* const handlers_;
  TaskSockets* const sockets_;
};

// A worker restricted to some submitters (Capabilities.accepted_submitters) refuses
// another's task with PERMISSION_DENIED, without running it. The coordinator never
// places such a task here; this guards against one that does.
class SubmitterGuard final : public AttemptExecutor {
 public:
  SubmitterGuard(const pb::Capabilities* capabilities, std::unique_ptr<AttemptExecutor> inner)
      : capabilities_(capabilities), inner_(std::move(inner)) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  const pb::Capabilities* const capabilities_;
  const std::unique_ptr<AttemptExecutor> inner_;
};

// What the coordinator hears of an attempt, decided from the stop token and the output:
// an attempt cancelled before it starts never starts (CANCELLED, no Started event);
// otherwise Started, then CANCELLED if cancelled meanwhile, TIMEOUT for the handler's
// own DEADLINE_EXCEEDED or the attempt's deadline, SUCCESS, or FAILED (permanent only for
// a handler's own refusal, handler.h). Sets the event's ids and output fields.
class OutcomeRules final : public AttemptExecutor {
 public:
  explicit OutcomeRules(std::unique_ptr<AttemptExecutor> inner) : inner_(std::move(inner)) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  const std::unique_ptr<AttemptExecutor> inner_;
};

// Reads `clock` before and after the attempt: TaskFinished.started_at_ms, finished_at_ms
// and execution_time_seconds (Attempt.started_at for those inside).
class TimingDecorator final : public AttemptExecutor {
 public:
  TimingDecorator(const Clock* clock, std::unique_ptr<AttemptExecutor> inner)
      : clock_(clock), inner_(std::move(inner)) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  const Clock* const clock_;
  const std::unique_ptr<AttemptExecutor> inner_;
};

// Attempts finished, by outcome, and how long they ran. Lock-free; read any time.
class AttemptMetrics {
 public:
  void Record(const pb::TaskFinished& finished);
  int64_t finished(pb::TaskStatus status) const { return finished_[status].load(); }
  const Histogram& run_time() const { return run_time_; }

 private:
  std::array<std::atomic<int64_t>, pb::TaskStatus_ARRAYSIZE> finished_{};
  Histogram run_time_;
};

// Records each attempt's outcome into `metrics` (which outlives it).
class MetricsDecorator final : public AttemptExecutor {
 public:
  MetricsDecorator(AttemptMetrics* metrics, std::unique_ptr<AttemptExecutor> inner)
      : metrics_(metrics), inner_(std::move(inner)) {}
  AttemptResult Execute(const Attempt& attempt) override;

 private:
  AttemptMetrics* const metrics_;
  const std::unique_ptr<AttemptExecutor> inner_;
};

// The worker's chain around `leaf`, in the order above. Pointers outlive the chain.
std::unique_ptr<AttemptExecutor> MakeAttemptChain(std::unique_ptr<AttemptExecutor> leaf,
                                                  const pb::Capabilities* capabilities, const Clock* clock,
                                                  AttemptMetrics* metrics);

}  // namespace rc::worker
