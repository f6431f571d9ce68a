#pragma once
// Runs assigned attempts on threads made on demand (a thread per running attempt,
// reused, never more than the most attempts ever running at once). Each attempt gets a
// StopToken with its deadline (on the injected clock); cancel stops it through the same
// token. What an attempt comes to is decided by the decorator chain it runs through
// (attempt_decorators.h); the Executor only holds, queues, cancels and reports.
//
// Lent slots (DESIGN.md "Workflows", "No deadlock"): an attempt waiting on its subtree
// (SetWaiting) does not count against `slots`, so a queued attempt can start beside it.
// CanStart is the rule; the coordinator decides what to send (its policy mirrors it), the
// Executor only never leaves an assignment queued behind a waiting attempt.

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
#include "worker/execution/usage_sampler.h"
#include "worker/execution/completion_inbox.h"
#include "worker/gateway/task_socket.h"
#include "worker/handler.h"

namespace rc::worker {

// Whether one more attempt may start with `running` attempts started (queued ones not
// counted), `waiting` of them waiting on their subtree: fewer than `slots` not waiting,
// and once the slots are full (only lent ones are free) at most `slots * max_task_depth`
// waiting. max_task_depth 0 (no lending) is the plain `running < slots`. Pure.
bool CanStart(int running, int waiting, int slots, int max_task_depth);

class Executor {
 public:
  // `capabilities`: what handlers may learn about the worker (system_info), and whose
  // tasks it serves. `clock` sets deadlines and times attempts. `sockets` (nullptr:
  // none) gives task processes their socket to the cluster.
  Executor(int slots, const HandlerRegistry* handlers, EventSink* sink, pb::Capabilities capabilities,
           const Clock* clock = RealClock::Get(), TaskSockets* sockets = nullptr);
  ~Executor();

  // Queues an attempt (or, for an Instant handler, runs it now on the calling thread);
  // one already held is ignored. A newer attempt of a task whose
  // older attempt is still stopping here runs beside it (each has its own slot).
  void Assign(const pb::Assignment& assignment);
  // Stops that attempt if held (queued ones finish CANCELLED at once); else no-op.
  void Cancel(const std::string& task_id, int attempt);
  // Marks a running attempt as waiting on its subtree, or no longer; the sink hears the
  // new set. No-op for an attempt not running here.
  void SetWaiting(const std::string& task_id, int attempt, bool waiting);
  // The coordinator's max_task_depth (Registered), bounding the lent slots; 0 until set.
  void SetMaxTaskDepth(int depth);
  // Attempts held: queued or running.
  std::vector<pb::RunningAttempt> HeldAttempts() const;
  // Of those, the ones waiting on their subtree.
  std::vector<pb::RunningAttempt> WaitingAttempts() const;
  int running() const;
  int waiting() const;
  int threads() const;  // slot threads made so far
  // Attempts finished here, by outcome; how long they ran.
  int64_t finished(pb::TaskStatus status) const { return metrics_.finished(status); }
  const Histogram& run_time() const { return metrics_.run_time(); }
  // True once no attempt is held; false if `deadline` (on the clock) passes first.
  bool WaitIdle(absl::Time deadline) const;
  // Stops every attempt without reporting (the coordinator requeues them) and joins
  // the slot threads. Idempotent.
  void Stop();

  // ---- Completions from outside (CoordinatorMessage.completions, DESIGN.md "Browser
  // automation"): each running attempt has a CompletionInbox (Attempt::completion). ----

  // Delivers `completion` to that attempt's inbox. False (logged) when the attempt is not
  // running here (ended, still queued, unknown) or already had one (the first wins).
  bool Complete(const std::string& task_id, int attempt, ExternalCompletion completion);
  // The coordinator's HTTP bridge as "http[s]://HOST:PORT" (CallbackBaseFor; "" = none):
  // attempts that start from now get Attempt::callback_url = base + "/tasks/ID/complete".
  void SetCallbackBase(std::string base);

 private:
  using AttemptKey = std::pair<std::string, int>;  // task id, attempt
  struct HeldAttempt {
    std::shared_ptr<StopToken> token;  // set when it starts
    bool cancelled = false;
    bool waiting = false;
  };
  struct Started {
    pb::Assignment assignment;
    std::shared_ptr<StopToken> token;
  };
  // Runs what StartQueuedLocked hands it (ready_), until stopped.
  void SlotLoop();
  // Marks the attempt started (it must be held) and returns its stop token.
  std::shared_ptr<StopToken> StartLocked(const pb::Assignment& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts queued attempts while CanStart allows, making threads for them as needed.
  void StartQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `then_idle`: the calling slot thread becomes idle when the attempt has ended.
  void RunOne(const pb::Assignment& a, const std::shared_ptr<StopToken>& token, bool then_idle);
  // Forgets an attempt that ran; true when it was waiting (the set changed).
  bool EndLocked(const AttemptKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<pb::RunningAttempt> WaitingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the sink the current waiting set; serialized so the last report is current.
  void ReportWaiting();
  // Gives `attempt` its inbox (kept here until CloseCompletion) and its callback URL.
  std::shared_ptr<CompletionInbox> OpenCompletion(const pb::Assignment& a, Attempt* attempt);
  void CloseCompletion(const pb::Assignment& a);

  const int slots_;
  const HandlerRegistry* const handlers_;
  EventSink* const sink_;
  const pb::Capabilities capabilities_;
  const Clock* const clock_;
  AttemptMetrics metrics_;
  // Live CPU and memory of running attempts' processes, sent to sink_ every second; the
  // chain's UsageSampling (around the handler) tells it which processes.
  UsageSampler sampler_;
  const std::unique_ptr<AttemptExecutor> chain_;  // reads capabilities_, clock_, metrics_, sampler_

  absl::Mutex report_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::deque<pb::Assignment> pending_ ABSL_GUARDED_BY(mu_);  // queued, not started
  std::deque<Started> ready_ ABSL_GUARDED_BY(mu_);           // started, for an idle thread
  absl::flat_hash_map<AttemptKey, HeldAttempt> held_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // started (ready_ included), not yet ended
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;  // of those, waiting on their subtree
  int max_task_depth_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_threads_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  absl::Mutex join_mu_;  // Stop may race with itself (drain vs. a second signal)
  // Completions: apart from mu_ (never held together), so delivery waits on no slot logic.
  mutable absl::Mutex completion_mu_;
  absl::flat_hash_map<AttemptKey, std::shared_ptr<CompletionInbox>> inboxes_ ABSL_GUARDED_BY(completion_mu_);
  std::string callback_base_ ABSL_GUARDED_BY(completion_mu_);
};

}  // namespace rc::worker
