#pragma once
// Where a task's life is decided (coordinator/core), bottom to top. One mutex, `mu_`,
// guards all of it; each layer is a class deriving from the one below, so that every
// layer names the same `mu_` and clang's thread-safety analysis checks them all.
//   task_lifecycle   TaskLifecycle: the only code changing a task's status and attempts,
//                    checked against its transition table (no lock, no queue, no I/O)
//   core_state       CoordinatorState: the shared state; snapshots to watchers, which
//                    records to write, the payload budget, the finished-task cache
//   dispatch         TaskDispatch: the queue, placement of queued tasks on workers,
//                    failed attempts back to the queue after a backoff
//   worker_sessions  WorkerSessions: register/reconcile, started/finished/progress,
//                    liveness, hand-back, drain: a worker's word about its attempts
//   submissions      Submissions: submit, idempotency keys, owner limits, accept, cancel
//   recovery         Recovery: rebuilding from the store at startup, retention
//   task_reads       TaskReads: GetTask, ListTasks, watches, stats (memory + store)
//   coordinator      Coordinator: the public facade; runs each operation under the lock
//                    (Mutate) and delivers its Effects after releasing it
// A layer's *Locked methods run under `mu_` inside one Mutate and add what must happen
// after the lock to `fx`; none of them calls out (store, links, sinks) itself.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/histogram.h"
#include "common/ids.h"
#include "coordinator/core/coordinator_options.h"
#include "coordinator/core/links.h"
#include "coordinator/core/task_lifecycle.h"
#include "coordinator/core/task_table.h"
#include "coordinator/scheduling/task_queue.h"
#include "coordinator/scheduling/worker_registry.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

// Everything an operation must do after releasing the state lock (coordinator_internal.h).
struct Effects;

// A task's outcome reaches waiters (Wait, Watch) as soon as the worker reports it,
// before its own record is durable: the worker keeps the result until the coordinator
// acknowledges it after that commit, and sends it again to a restarted coordinator.
// That resend lands only if the restarted coordinator knows the attempt, so an outcome
// goes out only once the attempt it ends is durable (written as assigned or running);
// until then its snapshot waits here, and Committed releases it (normally at once: the
// assignment was committed while the task ran).
struct HeldSnapshot {
  uint64_t attempt_op;  // the write of the attempt
  uint64_t own_op;      // the write of the outcome itself: releases it if attempt_op failed
  std::shared_ptr<TaskSink> sink;
  pb::Task task;
  bool load = false;  // its payload is in the store only (PayloadLoader)
};

// Live usage samples (TaskProgress.usage) are kept in memory only: the record written of a
// running task holds its pid and nothing else of resource_usage, and a task whose attempt
// has ended holds what the final report said (cpu_seconds, peak_rss_bytes), without pid
// or sample. Applied to every record written and to a task whenever it stops running.
void StripLiveUsage(pb::Task* task);

// The Coordinator's state, behind one mutex, and the bookkeeping every layer shares.
// Design assumption: unfinished tasks fit in memory as metadata; finished ones leave it
// once durable (TrimFinishedLocked), payloads beyond the budget stay in the store.
class CoordinatorState {
 protected:
  CoordinatorState(CoordinatorOptions options, TaskStore* store, Clock* clock);

  // A snapshot for clients: the record plus why a queued task waits.
  pb::Task SnapshotLocked(const TaskEntry& e) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After every change of a task: a new revision, one write when the operation ends
  // (unless `write` is false: a change recovery does not need, see StartedLocked), and a
  // snapshot to each watcher (the last one, terminal, ends the watch).
  void ChangedLocked(TaskEntry* e, Effects& fx, bool write = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether every write handed to the store so far is committed.
  bool StoreIdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::MutexLock lock(&durable_mu_);
    return durable_op_ >= last_write_op_;
  }
  // Marks `e` for one write when the operation ends (no new revision, no snapshot).
  void WriteLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A snapshot for `sink`, through the loader when its payload is in the store only; a
  // terminal one only once its attempt is durable (HeldSnapshot).
  void NotifyLocked(const TaskEntry& e, const std::shared_ptr<TaskSink>& sink, pb::Task snapshot, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps the payload in memory if the budget allows, else leaves it to the store.
  void AdmitPayloadLocked(TaskEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::string& task_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool NeedsPayload(const TaskEntry& e) { return !e.payload_in_ram && e.payload_bytes > 0; }
  // Evicts the oldest finished tasks past the cache size whose records are durable.
  void TrimFinishedLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinatorOptions options_;
  TaskStore* const store_;
  Clock* const clock_;
  const int64_t started_at_ms_;

  mutable absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(delivery_mu_);
  // Held while delivering effects so that deliveries happen in state-change order.
  absl::Mutex delivery_mu_;

  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  TaskTable tasks_ ABSL_GUARDED_BY(mu_);
  TaskLifecycle lifecycle_ ABSL_GUARDED_BY(mu_);
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
  uint64_t last_write_op_ ABSL_GUARDED_BY(mu_) = 0;  // the last Mutate call that wrote
  uint64_t next_epoch_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_watch_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t tasks_scheduled_ ABSL_GUARDED_BY(mu_) = 0;
  // The HTTP bridge workers' tasks call back to (Registered.http_port/http_tls; 0: none).
  int32_t callback_http_port_ ABSL_GUARDED_BY(mu_) = 0;
  bool callback_http_tls_ ABSL_GUARDED_BY(mu_) = false;
  Histogram dispatch_latency_;  // thread-safe on its own
  Histogram end_to_end_latency_;
  // What the store has committed: operations (Mutate calls) up to durable_op_, except
  // those whose write failed.
  mutable absl::Mutex durable_mu_ ABSL_ACQUIRED_AFTER(mu_);
  uint64_t durable_op_ ABSL_GUARDED_BY(durable_mu_) = 0;
  absl::btree_set<uint64_t> failed_ops_ ABSL_GUARDED_BY(durable_mu_);
  // Outcomes waiting for their attempt's commit (HeldSnapshot), in operation order.
  std::vector<HeldSnapshot> held_ ABSL_GUARDED_BY(durable_mu_);
  // Whether the store refused the write of `operation` (known once it settled).
  bool WriteFailed(uint64_t operation) const {
    absl::MutexLock lock(&durable_mu_);
    return failed_ops_.contains(operation);
  }
  // Whether `h` may go out now: its attempt is committed, or its own write settled.
  bool ReleasableLocked(const HeldSnapshot& h) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(durable_mu_) {
    return (h.attempt_op <= durable_op_ && !failed_ops_.contains(h.attempt_op)) || h.own_op <= durable_op_;
  }
};

}  // namespace rc::coordinator
