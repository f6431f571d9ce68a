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
// polling loop. Tick() is the only periodic work: worker liveness, releasing retries
// whose backoff has passed, and retention.
//
// The Coordinator is the facade: each public method runs one operation under the lock
// (Mutate) and delivers its effects. The decisions live in the layers below it (map in
// core_state.h); a task's status changes only in TaskLifecycle (task_lifecycle.h).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "coordinator/core/completion_queue.h"
#include "coordinator/core/coordinator_options.h"
#include "coordinator/core/links.h"
#include "coordinator/core/payload_loader.h"
#include "coordinator/core/task_lifecycle.h"
#include "coordinator/core/task_reads.h"
#include "coordinator/core/task_table.h"
#include "coordinator/core/task_tokens.h"
#include "coordinator/store/task_store.h"
#include "retire_cluster/v1/client_service.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

class Coordinator : private TaskReads {
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
  // `by.owner` (the submitter's token name) is recorded in the task; RESOURCE_EXHAUSTED
  // when that owner already has max_unfinished_per_owner tasks unfinished, or when the
  // payload would take its unfinished payload bytes past max_unfinished_bytes_per_owner.
  // UNAVAILABLE when the store cannot answer an idempotency key lookup.
  // Workflows (DESIGN.md): `by.parent_task_id` makes it a child of that task, which must
  // be unfinished (FAILED_PRECONDITION naming it and how it ended; NOT_FOUND for an
  // unknown one): it inherits the parent's owner, its idempotency key is scoped to the
  // parent, and RESOURCE_EXHAUSTED past max_task_depth or max_children_per_task.
  // spec.after: INVALID_ARGUMENT naming after[k] for an unknown task id or an
  // after_index that does not name an earlier, accepted entry of the batch; the refusal
  // of `by.may_depend_on` for a task the caller may not depend on. The task stays
  // PENDING until its dependencies end (answered PENDING once durable), and ends
  // CANCELLED when one ended against its condition.
  void Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done, const Submitter& by = {});
  // Submit for many specs at once: one store commit and one dispatch pass for all.
  // Each spec is answered on its own, as Submit would (a bad one does not refuse the
  // others); `done` runs once, with the answers in the order of `specs`.
  void SubmitBatch(std::vector<pb::TaskSpec> specs, SubmitBatchDone done, const Submitter& by = {});
  // NOT_FOUND for an unknown id; UNAVAILABLE when the store cannot be read.
  using TaskReads::GetTask;
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
  using TaskReads::ListTasks;
  using TaskReads::ListWorkers;
  // An admin's drain: the worker gets no new tasks while drained (running ones finish);
  // `drain` = false lifts it. Survives the worker's reconnects, not a coordinator
  // restart. NOT_FOUND for an unknown device.
  absl::StatusOr<pb::Worker> DrainWorker(const std::string& device_id, bool drain);
  using TaskReads::Stats;
  // Task type -> status name -> count (for /metrics).
  using TaskReads::CountsByType;
  // Tasks held in memory (unfinished ones and the finished cache), and the payload bytes
  // among them: what the memory bounds act on (tests, diagnostics).
  using TaskReads::payload_bytes_in_memory;
  using TaskReads::tasks_in_memory;
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
  using TaskReads::Unwatch;

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

  // ---- Task tokens (DESIGN.md "Workflows", task_tokens.h) ----

  // The attempt `token` was made for, when that attempt is the task's current one and
  // still ASSIGNED or RUNNING; else UNAUTHENTICATED "task token is not valid (...)",
  // the same text whatever failed (malformed, unknown task, ended or older attempt, wrong
  // secret), so a caller learns nothing about other tasks.
  absl::StatusOr<TaskTokenHolder> CheckTaskToken(absl::string_view token) const;

  // ---- Completion from outside (DESIGN.md "Browser automation", external_completions.cc) ----

  // Hands `completion` (a callback made with the token of attempt completion.attempt())
  // to the worker running that attempt, as CoordinatorMessage.completions; the task
  // changes only when the worker reports the attempt's end (TaskFinished). Returns the
  // attempt. FAILED_PRECONDITION "task X is <status> ..." unless that attempt is the
  // task's current one and RUNNING (ended, queued, assigned, or a newer attempt runs);
  // UNAVAILABLE when the worker running it is disconnected (retry); UNAVAILABLE after
  // Shutdown. The caller (ClientApi) has validated status, result and the token.
  absl::StatusOr<int32_t> CompleteAttempt(pb::CompleteAttempt completion);
  // The HTTP bridge's port and scheme, told to every worker that registers from now on
  // (Registered.http_port/http_tls: its tasks' RC_CALLBACK_URL). 0 (the default): none.
  // Call before workers connect (CoordinatorServer does, before gRPC serves).
  void SetCallbackEndpoint(int32_t http_port, bool http_tls);

 private:
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
  // key or dependencies must be looked up again are retried.
  void SubmitSome(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                  const std::vector<absl::Status>& invalid, const Answer& answer, const Submitter& by,
                  BatchIds* batch, int round);
  // Records of the tasks named by the recovered ones (parents, dependencies) that are
  // not among `have`, read from the store (recovery).
  StoredRecords ReadNamed(const std::vector<const pb::Task*>& tasks) const;
  // Called for every store write, in order: what is durable now; releases the outcomes
  // that waited for it (HeldSnapshot).
  void Committed(uint64_t operation, const absl::Status& s);
  // Sends held snapshots to their sinks (no lock held).
  void Release(std::vector<HeldSnapshot>& held);
  // Assignments the loader could not complete: each attempt ends as failed (retried).
  void PayloadsUnread(std::vector<PayloadLoader::Unread> unread);
  // Retention of finished tasks kept only in the store (after the in-memory ones).
  void PruneStored(int64_t now_ms);
  // The record to write for a change: without the payload, which the store keeps from
  // the task's first write (TaskStore::Write), so it is neither copied nor rewritten.
  TaskRecord RecordLocked(TaskEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Destroyed (its thread stopped) before what its deliveries reach.
  PayloadLoader loader_;
  // The store's answers, run in delivery order on the core's side (completion_queue.h).
  StoreCompletions completions_{store_};
};

}  // namespace rc::coordinator
