#include "coordinator/core/core_state.h"

#include <algorithm>

#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"

namespace rc::coordinator {

CoordinatorState::CoordinatorState(CoordinatorOptions options, TaskStore* store, Clock* clock)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      started_at_ms_(clock->NowMs()),
      lifecycle_(&tasks_, RetryRule{options_.retry_backoff_initial, options_.retry_backoff_max, options_.random}),
      workers_(options_.max_task_depth) {}

pb::Task CoordinatorState::SnapshotLocked(const TaskEntry& e) const {
  pb::Task t = e.task;
  t.clear_attempt_token_sha256();  // internal: checks task tokens, never shown to a client
  if (t.status() == pb::TASK_STATUS_QUEUED) {
    auto it = class_reasons_.find(e.cls);
    if (it != class_reasons_.end()) t.set_unschedulable_reason(it->second);
  }
  return t;
}

void StripLiveUsage(pb::Task* t) {
  if (!t->has_resource_usage()) return;
  pb::ResourceUsage* u = t->mutable_resource_usage();
  if (t->status() == pb::TASK_STATUS_ASSIGNED || t->status() == pb::TASK_STATUS_RUNNING) {
    const int32_t pid = u->pid();
    u->Clear();
    u->set_pid(pid);
    return;
  }
  u->set_pid(0);
  u->set_cpu_percent(0);
  u->set_memory_bytes(0);
  u->set_sampled_at_ms(0);
}

void CoordinatorState::ChangedLocked(TaskEntry* e, Effects& fx, bool write) {
  e->task.set_revision(e->task.revision() + 1);
  // Ended, cancelled or requeued: its last sample is no longer live.
  if (e->task.status() != pb::TASK_STATUS_ASSIGNED && e->task.status() != pb::TASK_STATUS_RUNNING) {
    StripLiveUsage(&e->task);
  }
  if (IsTerminal(e->task.status()) && e->task.finished_at_ms() > 0) {
    end_to_end_latency_.Observe((e->task.finished_at_ms() - e->task.created_at_ms()) / 1000.0);
  }
  if (write) WriteLocked(e, fx);
  if (e->watchers.empty()) return;
  const bool terminal = IsTerminal(e->task.status());
  // One snapshot, copied to every sink that takes it but the last, which gets it moved (a
  // task's record is a few hundred bytes in many small allocations; issue 18).
  size_t last = e->watchers.size();
  for (size_t i = 0; i < e->watchers.size(); ++i) {
    if (terminal || !e->watchers[i].second->TerminalOnly()) last = i;
  }
  if (last < e->watchers.size()) {
    pb::Task snapshot = SnapshotLocked(*e);
    for (size_t i = 0; i < last; ++i) {
      const std::shared_ptr<TaskSink>& sink = e->watchers[i].second;
      if (terminal || !sink->TerminalOnly()) NotifyLocked(*e, sink, snapshot, fx);
    }
    NotifyLocked(*e, e->watchers[last].second, std::move(snapshot), fx);
  }
  if (terminal) e->watchers.clear();
}

void CoordinatorState::WriteLocked(TaskEntry* e, Effects& fx) {
  e->assignment_unwritten = false;  // whatever is written now carries the assignment too
  const pb::TaskStatus st = e->task.status();
  if ((st == pb::TASK_STATUS_ASSIGNED || st == pb::TASK_STATUS_RUNNING) && e->attempt_written != e->task.attempts()) {
    e->attempt_written = e->task.attempts();
    e->attempt_op = operation_;
  }
  if (e->written_in == operation_) return;
  e->written_in = operation_;
  fx.changed.push_back(e->task.task_id());
}

void CoordinatorState::NotifyLocked(const TaskEntry& e, const std::shared_ptr<TaskSink>& sink, pb::Task snapshot,
                                    Effects& fx) {
  if (e.attempt_op != 0 && IsTerminal(snapshot.status())) {
    HeldSnapshot h{e.attempt_op, e.written_in, sink, pb::Task(), NeedsPayload(e)};
    absl::MutexLock lock(&durable_mu_);
    if (!ReleasableLocked(h)) {
      h.task = std::move(snapshot);
      fx.held.push_back(std::move(h));  // Deliver checks again, under durable_mu_
      return;
    }
  }
  if (NeedsPayload(e)) {
    fx.snapshots_to_load.emplace_back(sink, std::move(snapshot));
    return;
  }
  // A task that changes twice in one operation (a worker's message saying it started and
  // finished) shows each watcher its last state only: a sink replaces an unsent snapshot
  // anyway, and one sent just before would hold the newer one back for a whole stream
  // write (about 50 us of a round trip, issue 18).
  auto [at, added] = fx.snapshot_index.emplace(std::make_pair(sink.get(), e.task.task_id()), fx.snapshots.size());
  if (added) {
    fx.snapshots.emplace_back(sink, std::move(snapshot));
  } else {
    fx.snapshots[at->second].second = std::move(snapshot);
  }
}

void CoordinatorState::AdmitPayloadLocked(TaskEntry* e) {
  // Already counted since its submit (or recovery): it stays if the total fits.
  if (!e->payload_in_ram || payload_bytes_in_ram_ <= options_.memory_payload_budget_bytes) return;
  payload_bytes_in_ram_ -= e->payload_bytes;
  delete e->task.mutable_spec()->release_payload();  // clear_payload() would keep the string and its capacity
  e->payload_in_ram = false;
}

void CoordinatorState::ForgetLocked(const std::string& task_id) {
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return;
  if (e->payload_in_ram) payload_bytes_in_ram_ -= e->payload_bytes;
  tasks_.Erase(task_id);
}

void CoordinatorState::TrimFinishedLocked(Effects& fx) {
  const size_t keep = static_cast<size_t>(std::max<int64_t>(0, options_.finished_cache_tasks));
  if (tasks_.finished_in_memory() <= keep) return;
  absl::MutexLock lock(&durable_mu_);
  while (tasks_.finished_in_memory() > keep) {
    TaskEntry* e = tasks_.OldestFinished();
    if (e == nullptr || e->written_in > durable_op_) break;  // its final record is not committed yet
    if (failed_ops_.contains(e->written_in)) {
      // Its last write failed: write it again; it leaves memory once that commits.
      e->written_in = fx.operation;
      fx.changed.push_back(e->task.task_id());
      break;
    }
    if (e->payload_in_ram) payload_bytes_in_ram_ -= e->payload_bytes;
    if (!e->task.spec().idempotency_key().empty()) ++keyed_evictions_;
    const std::string id = e->task.task_id();
    tasks_.Evict(id);
  }
}

}  // namespace rc::coordinator
