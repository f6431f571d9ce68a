#pragma once
// The coordinator's domain core: task table, queue, worker registry and dispatch, with
// no gRPC in sight (STYLE.md rule 3). All state sits behind one mutex; every operation
// computes its effects (messages to workers, snapshots to watchers, records to store)
// under the lock and delivers them after releasing it, in state-change order.
//
// Design assumptions: unfinished tasks fit in memory as metadata (about 1 KB each) and
// their payloads up to memory_payload_budget_bytes; beyond it payloads stay in the store
// and are read back when their task is dispatched (PayloadLoader, off the lock). Finished
// tasks stay in memory only in a cache of the latest finished_cache_tasks once their
// record is durable; every read of the others (GetTask, ListTasks, Watch, Cancel,
// idempotency keys, retention) goes to the store outside the lock. Counts per status and
// type cover every stored task. The store is write-through. Dispatch is event-driven: every event that can make a placement
// possible (submit, worker join, slot freed) runs Dispatch at once, and there is no
// polling loop. Tick() is the only periodic work: worker liveness.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/ids.h"
#include "coordinator/core/completion_queue.h"
#include "coordinator/core/links.h"
#include "coordinator/core/payload_loader.h"
#include "coordinator/scheduling/task_queue.h"
#include "coordinator/store/task_store.h"
#include "coordinator/core/task_table.h"
#include "coordinator/core/task_validation.h"
#include "coordinator/scheduling/worker_registry.h"
#include "retire_cluster/v1/client_service.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

// The largest batch SubmitBatch callers should send (the gRPC and HTTP layers refuse more).
inline constexpr size_t kMaxSubmitBatch = 10000;

using SubmitBatchDone = std::function<void(std::vector<absl::StatusOr<SubmitResult>>)>;

// Whether the caller may act on one task, decided by the client API (coordinator/api)
// from the task it is shown; the core only asks, under its lock, and passes a refusal on.
// An empty TaskAccess allows everything (in-process callers and tests).
using TaskAccess = std::function<absl::Status(const pb::Task& task)>;

struct CoordinatorOptions {
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration offline_after = absl::Seconds(5);
  absl::Duration reconnect_grace = absl::Seconds(2);
  absl::Duration retry_backoff_initial = absl::Seconds(1);
  absl::Duration retry_backoff_max = absl::Seconds(60);
  absl::Duration retention = absl::Hours(24 * 7);
  // After a restart, how long a worker has to come back and report the attempts the
  // store says it holds (workers back off up to 10 s between reconnects).
  absl::Duration restart_grace = absl::Seconds(15);
  TaskLimits limits;
  // Unfinished tasks one named submitter (client token) may have at once; 0 = no limit.
  // The unnamed loopback caller (no client tokens configured) is not limited.
  int64_t max_unfinished_per_owner = 0;
  // Payload bytes of unfinished tasks one named submitter may have at once; 0 = no
  // limit. Like max_unfinished_per_owner, not applied to the unnamed caller.
  int64_t max_unfinished_bytes_per_owner = 0;
  // Payload bytes held in memory (queued, running and cached finished tasks together);
  // beyond it a newly queued task's payload is left in the store until its dispatch.
  int64_t memory_payload_budget_bytes = int64_t{192} << 20;
  // Finished tasks kept in memory (the latest to finish); older ones are read from the store.
  int64_t finished_cache_tasks = 10000;
  // Uniform in [0, 1): the jitter of retry backoff. Injected so tests are exact.
  std::function<double()> random;
};

// Delay before retry number `retry` (1-based): initial * 2^(retry-1), capped at max,
// scaled by (0.5 + random/2). Pure.
absl::Duration RetryBackoff(int retry, absl::Duration initial, absl::Duration max, double random);

class Coordinator {
 public:
  Coordinator(CoordinatorOptions options, TaskStore* store, Clock* clock);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Rebuilds the state from the store; call once, before serving. Unfinished tasks go
  // back to the queue, except assigned/running ones: they stay reserved on their
  // worker, which has reconnect_grace to come back and report them. Finished tasks stay
  // in the store (only counted). Errors: those of TaskStore::LoadForRecovery.
  absl::Status RecoverFromStore();
  // The same from records given (tests and tools): finished ones are held in memory
  // until the cache trims them (they must be in the store already).
  void Recover(std::vector<pb::Task> tasks);

  // ---- Client side ----

  // Validates `spec`, persists the task, queues it and dispatches. `done` runs once
  // when the task is durable: INVALID_ARGUMENT naming a bad field, UNAVAILABLE after
  // Shutdown or when the store fails. An idempotency_key already seen answers the
  // first task with existing = true.
  // `owner` (the submitter's token name) is recorded in the task; RESOURCE_EXHAUSTED
  // when that owner already has max_unfinished_per_owner tasks unfinished, or when the
  // payload would take its unfinished payload bytes past max_unfinished_bytes_per_owner.
  // UNAVAILABLE when the store cannot answer an idempotency key lookup.
  void Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done,
              const std::string& owner = "");
  // Submit for many specs at once: one store commit and one dispatch pass for all.
  // Each spec is answered on its own, as Submit would (a bad one does not refuse the
  // others); `done` runs once, with the answers in the order of `specs`.
  void SubmitBatch(std::vector<pb::TaskSpec> specs, SubmitBatchDone done, const std::string& owner = "");
  // NOT_FOUND for an unknown id; UNAVAILABLE when the store cannot be read.
  absl::StatusOr<pb::Task> GetTask(const std::string& task_id) const;
  // A queued task ends CANCELLED now; an assigned/running one ends CANCELLED now and
  // its worker is told to stop it (its slot stays reserved until the worker confirms).
  // `done` runs once the cancellation is stored: cancelled = false for a task already
  // finished; NOT_FOUND for an unknown id; UNAVAILABLE if the store failed.
  // The refusal of `allow` (e.g. PERMISSION_DENIED) when it refuses the task. The error
  // message records "cancelled by <by>" ("cancelled by client" when `by` is empty).
  void Cancel(const std::string& task_id, std::function<void(absl::StatusOr<pb::CancelTaskResponse>)> done,
              const TaskAccess& allow = nullptr, const std::string& by = "");
  // Newest first. INVALID_ARGUMENT for a limit outside 1..10000; UNAVAILABLE when the
  // store cannot be read.
  absl::StatusOr<std::vector<pb::Task>> ListTasks(const TaskFilter& filter) const;
  std::vector<pb::Worker> ListWorkers(const std::string& device_id) const;
  // An admin's drain: the worker gets no new tasks while drained (running ones finish);
  // `drain` = false lifts it. Survives the worker's reconnects, not a coordinator
  // restart. NOT_FOUND for an unknown device.
  absl::StatusOr<pb::Worker> DrainWorker(const std::string& device_id, bool drain);
  pb::Stats Stats() const;
  // Task type -> status name -> count (for /metrics).
  std::map<std::string, std::map<std::string, int64_t>> CountsByType() const;
  // Tasks held in memory (unfinished ones and the finished cache), and the payload bytes
  // among them: what the memory bounds act on (tests, diagnostics).
  size_t tasks_in_memory() const;
  int64_t payload_bytes_in_memory() const;
  // Latency histograms for /metrics: submit -> first assignment, submit -> terminal state.
  const Histogram& dispatch_latency() const { return dispatch_latency_; }
  const Histogram& end_to_end_latency() const { return end_to_end_latency_; }
  // Sends the current snapshot to `sink` at once, then every change until a terminal
  // state. Returns a handle for Unwatch. NOT_FOUND for an unknown id, UNAVAILABLE after
  // Shutdown.
  // The refusal of `allow` when it refuses the task.
  absl::StatusOr<uint64_t> Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink,
                                 const TaskAccess& allow = nullptr);
  // Watch for many tasks under one lock: one handle or error per id, in order.
  std::vector<absl::StatusOr<uint64_t>> WatchAll(const std::vector<std::string>& task_ids,
                                                 std::shared_ptr<TaskSink> sink, const TaskAccess& allow = nullptr);
  void Unwatch(const std::string& task_id, uint64_t watch_id);

  // ---- Worker side (the worker protocol in worker_service.proto) ----

  // A worker (re)connects over `link`. Returns the connection's epoch, which later
  // calls must carry; replaces an older connection of the same device. Reconciles the
  // attempts the worker reports against those the coordinator owns.
  // INVALID_ARGUMENT for bad capabilities, UNAVAILABLE after Shutdown.
  // `draining`: the worker is shutting down (its hello carried draining): nothing new
  // is assigned to it.
  absl::StatusOr<uint64_t> RegisterWorker(const pb::Register& reg, std::shared_ptr<WorkerLink> link,
                                          bool draining = false);
  // Heartbeat / started / finished events. Ignored when `epoch` is not the device's
  // current connection (fencing).
  void HandleWorkerMessage(const std::string& device_id, uint64_t epoch, const pb::WorkerMessage& msg);
  // That connection's liveness record, for its reader to stamp every message with
  // NowMs() without the state lock; a message that is only a heartbeat then needs no
  // HandleWorkerMessage. nullptr when the epoch is not current.
  std::shared_ptr<Heard> HeardFor(const std::string& device_id, uint64_t epoch);
  int64_t NowMs() const { return clock_->NowMs(); }
  // The stream of that epoch ended. Its tasks are requeued if it does not reconnect
  // within reconnect_grace.
  void WorkerDisconnected(const std::string& device_id, uint64_t epoch);

  // Time-driven work: marks workers offline whose heartbeats stopped, requeues tasks of
  // workers gone past the grace period, releases retries whose backoff has passed, and
  // prunes finished tasks older than the retention (at most once a minute). Call
  // periodically (CoordinatorServer does, several times a second).
  void Tick();
  // Closes every worker link and aborts every watcher; later submits are refused.
  void Shutdown();

 private:
  struct Effects;

  // Runs `fn(fx)` under mu_, then delivers fx in order (hand-over-hand on delivery_mu_),
  // then runs the operation's store completion if the store has already answered.
  template <typename Fn>
  auto Mutate(Fn&& fn);
  // Sends, closes, notifies, and hands the writes to the store; returns the operation's
  // completion ticket (0: none), whose work calls Committed and the after_commit
  // callbacks once the store has answered and every earlier completion has run.
  uint64_t Deliver(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(delivery_mu_);

  // The second half of SubmitBatch, once the store answered for the new records:
  // queues them, dispatches, and answers each through `answer(index in ids, result)`.
  void Accepted(const std::vector<std::string>& ids, const absl::Status& stored,
                const std::function<void(size_t, absl::StatusOr<SubmitResult>)>& answer);
  // SubmitBatch for the specs at `todo` (indices into specs); those whose idempotency
  // key must be looked up again are retried.
  using Answer = std::function<void(size_t, absl::StatusOr<SubmitResult>)>;
  void SubmitSome(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                  const std::vector<absl::Status>& invalid, const Answer& answer, const std::string& owner, int round);
  // A finished task no longer in memory, from the store (nullopt: unknown). UNAVAILABLE
  // when the store fails.
  absl::StatusOr<std::optional<pb::Task>> StoredFinished(const std::string& task_id) const;
  // Evicts the oldest finished tasks past the cache size whose records are durable.
  void TrimFinishedLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called for every store write, in order: what is durable now.
  void Committed(uint64_t operation, const absl::Status& s);
  // Keeps the payload in memory if the budget allows, else leaves it to the store.
  void AdmitPayloadLocked(TaskEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::string& task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NeedsPayload(const TaskEntry& e) const { return !e.payload_in_ram && e.payload_bytes > 0; }
  // A snapshot for `sink`, through the loader when its payload is in the store only.
  void NotifyLocked(const TaskEntry& e, const std::shared_ptr<TaskSink>& sink, pb::Task snapshot, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Assignments the loader could not complete: each attempt ends as failed (retried).
  void PayloadsUnread(std::vector<PayloadLoader::Unread> unread);
  // Retention of finished tasks kept only in the store (after the in-memory ones).
  void PruneStored(int64_t now_ms);
  void AcceptLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ChangedLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  pb::Task SnapshotLocked(const TaskEntry& e) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The record to write for a change: without the payload, which the store keeps from
  // the task's first write (TaskStore::Write), so it is neither copied nor rewritten.
  pb::Task RecordLocked(TaskEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AssignLocked(TaskEntry* e, WorkerEntry* w, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshReasonsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshReasonLocked(ClassId cls) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseAttemptLocked(WorkerEntry* w, const std::string& task_id, int32_t attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoseWorkerTasksLocked(WorkerEntry* w, const std::string& why, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A deregistering worker's unfinished attempts: back to the queue at once, not
  // counted as failures.
  void HandBackLocked(WorkerEntry* w, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the current attempt as FAILED with `why`; the task retries after a backoff,
  // or fails for good when its attempts are used up.
  void RetryOrFailLocked(TaskEntry* e, const std::string& why, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueLocked(TaskEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseRetriesLocked(int64_t now_ms, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One unfinished (or, from Recover, any) stored task back into memory.
  void RestoreLocked(pb::Task task, int64_t payload_bytes, bool payload_loaded, int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(WorkerEntry* w, const pb::TaskFinished& f, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartedLocked(WorkerEntry* w, const pb::TaskStarted& s, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdoptLocked(TaskEntry* e, WorkerEntry* w, int32_t attempt, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileLocked(WorkerEntry* w, const pb::Register& reg, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinatorOptions options_;
  TaskStore* const store_;
  Clock* const clock_;
  const int64_t started_at_ms_;

  mutable absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(delivery_mu_);
  // Held while delivering effects so that deliveries happen in state-change order.
  absl::Mutex delivery_mu_;

  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  TaskTable tasks_ ABSL_GUARDED_BY(mu_);
  TaskQueue queue_ ABSL_GUARDED_BY(mu_);
  // Per scheduling class: why no accepting worker could run it ("" if one could).
  // Cleared whenever the set of accepting workers changes; filled on demand.
  absl::flat_hash_map<ClassId, std::string> class_reasons_ ABSL_GUARDED_BY(mu_);
  WorkerRegistry workers_ ABSL_GUARDED_BY(mu_);
  // Tasks waiting out a retry backoff, by the time they may go: (ms, task id).
  absl::btree_set<std::pair<int64_t, std::string>> retry_at_ ABSL_GUARDED_BY(mu_);
  int64_t last_prune_ms_ ABSL_GUARDED_BY(mu_) = 0;
  bool prune_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // a store prune's deletes not yet committed
  int64_t payload_bytes_in_ram_ ABSL_GUARDED_BY(mu_) = 0;
  // Counts evictions of finished tasks with an idempotency key: a submit that looked a
  // key up in the store retries if one happened meanwhile.
  uint64_t keyed_evictions_ ABSL_GUARDED_BY(mu_) = 0;
  SortableIds task_ids_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t operation_ ABSL_GUARDED_BY(mu_) = 0;  // counts Mutate calls
  uint64_t next_epoch_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_watch_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t tasks_scheduled_ ABSL_GUARDED_BY(mu_) = 0;
  Histogram dispatch_latency_;    // thread-safe on its own
  Histogram end_to_end_latency_;
  // What the store has committed: operations (Mutate calls) up to durable_op_, except
  // those whose write failed.
  mutable absl::Mutex durable_mu_ ABSL_ACQUIRED_AFTER(mu_);
  uint64_t durable_op_ ABSL_GUARDED_BY(durable_mu_) = 0;
  absl::btree_set<uint64_t> failed_ops_ ABSL_GUARDED_BY(durable_mu_);
  // Last: destroyed (its thread stopped) before what its deliveries reach.
  PayloadLoader loader_;
  // The store's answers, run in delivery order on the core's side (completion_queue.h).
  StoreCompletions completions_{store_};
};

}  // namespace rc::coordinator
