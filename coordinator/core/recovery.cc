#include "coordinator/core/recovery.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

void Recovery::RecoverLocked(RecoveryData& data, const StoredRecords& named, Effects& fx) {
  const int64_t now = clock_->NowMs();
  next_seq_ = std::max(next_seq_, data.max_sequence + 1);
  if (!data.max_task_id.empty()) task_ids_.After(data.max_task_id, now);
  int64_t finished = 0, in_store = 0;
  for (const auto& [type, status, n] : data.finished_counts) {
    tasks_.CountStored(type, status, n);
    finished += n;
  }
  std::vector<TaskEntry*> restored;
  restored.reserve(data.unfinished.size());
  for (RecoveredTask& r : data.unfinished) {
    in_store += r.payload_loaded ? 0 : 1;
    restored.push_back(RestoreLocked(std::move(r.task), r.payload_bytes, r.payload_loaded, now));
  }
  RelinkLocked(std::move(restored), named, fx);
  spdlog::info("recovered {} unfinished tasks ({} with their payload left in the store) and {} finished (in the store)",
               data.unfinished.size(), in_store, finished);
}

void Recovery::RecoverTasksLocked(std::vector<pb::Task> tasks, const StoredRecords& named, Effects& fx) {
  const int64_t now = clock_->NowMs();
  std::vector<TaskEntry*> restored;
  restored.reserve(tasks.size());
  for (pb::Task& t : tasks) {
    const auto bytes = static_cast<int64_t>(t.spec().payload().size());
    restored.push_back(RestoreLocked(std::move(t), bytes, true, now));
  }
  RelinkLocked(std::move(restored), named, fx);
  spdlog::info("recovered {} tasks", tasks.size());
}

std::vector<std::string> Recovery::NamedElsewhere(const std::vector<const pb::Task*>& tasks) {
  absl::flat_hash_set<absl::string_view> have;
  for (const pb::Task* t : tasks) have.insert(t->task_id());
  absl::flat_hash_set<std::string> out;
  for (const pb::Task* t : tasks) {
    if (IsTerminal(t->status())) continue;
    if (!t->parent_task_id().empty() && !have.contains(t->parent_task_id())) out.insert(t->parent_task_id());
    if (t->status() != pb::TASK_STATUS_PENDING) continue;
    for (const pb::Dependency& d : t->spec().after()) {
      if (!have.contains(d.task_id())) out.insert(d.task_id());
    }
  }
  return {out.begin(), out.end()};
}

void Recovery::RelinkLocked(std::vector<TaskEntry*> restored, const StoredRecords& named, Effects& fx) {
  std::sort(restored.begin(), restored.end(), [](const TaskEntry* a, const TaskEntry* b) { return a->key.seq < b->key.seq; });
  for (TaskEntry* e : restored) {
    if (IsTerminal(e->task.status())) continue;  // ended by an earlier one meanwhile, or finished
    const std::string& parent = e->task.parent_task_id();
    if (!parent.empty() && e->task.spec().parent_close() != pb::PARENT_CLOSE_ABANDON) {
      // Its parent's end cancels it in the same commit; a parent found ended here (or
      // gone) ended without that commit: its consequence now.
      const TaskEntry* p = tasks_.Find(parent);
      std::optional<pb::TaskStatus> ended;
      if (p != nullptr) {
        if (IsTerminal(p->task.status())) ended = p->task.status();
      } else {
        auto it = named.find(parent);
        const bool stored = it != named.end() && it->second.ok() && it->second->has_value();
        ended = stored && IsTerminal((*it->second)->status()) ? (*it->second)->status() : pb::TASK_STATUS_CANCELLED;
      }
      if (ended.has_value() && EndsWithParent(e->task, *ended)) {
        (void)StopLocked(e, ParentEndedMessage(parent, *ended), fx);  // unfinished: allowed
        continue;
      }
    }
    if (e->task.status() == pb::TASK_STATUS_PENDING) {
      ResumePendingLocked(e, named, fx);
    } else {
      LinkLocked(e, {});
    }
  }
}

void Recovery::ResumePendingLocked(TaskEntry* e, const StoredRecords& named, Effects& fx) {
  std::vector<TaskEntry*> unended;
  std::vector<std::string> ids;
  std::string never;
  for (const pb::Dependency& d : e->task.spec().after()) {
    DependencyState st = DependencyLocked(d, named);
    switch (st.kind) {
      case DependencyState::kUnended:
        unended.push_back(st.entry);
        ids.push_back(d.task_id());
        break;
      case DependencyState::kMet:
        break;
      case DependencyState::kNever:
        never = st.why;
        break;
      case DependencyState::kError:
      case DependencyState::kLookup:
      case DependencyState::kUnknown:
        // Pruned by retention while this one waited (or unreadable): how it ended is
        // unknown, so no condition can be shown to hold.
        never = absl::StrCat("dependency ", d.task_id(), " is no longer known",
                             st.why.empty() ? "" : absl::StrCat(" (", st.why, ")"));
        break;
    }
    if (!never.empty()) break;
  }
  if (!never.empty()) {
    (void)StopLocked(e, never, fx);  // pending: allowed
    return;
  }
  // Recomputed from the dependencies, not trusted from the record.
  (void)lifecycle_.AwaitDependencies(e, std::move(ids));  // pending, not accepted yet: allowed
  LinkLocked(e, unended);
  // Committed, so possibly acknowledged: accepted now.
  if (lifecycle_.Accept(e).ok() && e->task.status() == pb::TASK_STATUS_QUEUED) EnqueueLocked(e);
}

TaskEntry* Recovery::RestoreLocked(pb::Task t, int64_t payload_bytes, bool payload_loaded, int64_t now) {
  auto entry = std::make_unique<TaskEntry>();
  entry->cls = queue_.Intern(t.spec().task_type(), t.spec().requirements(), t.owner(), t.depth());
  entry->key = QueueKey{t.spec().priority(), t.sequence()};
  entry->payload_bytes = payload_bytes;
  entry->payload_in_ram = payload_loaded;
  if (payload_loaded) payload_bytes_in_ram_ += payload_bytes;
  next_seq_ = std::max(next_seq_, t.sequence() + 1);
  task_ids_.After(t.task_id(), now);
  entry->task = std::move(t);
  TaskEntry* e = tasks_.Insert(std::move(entry));
  AdmitPayloadLocked(e);
  pb::Task& task = e->task;
  switch (task.status()) {
    case pb::TASK_STATUS_PENDING:  // accepted once its graph is known (RelinkLocked)
      break;
    case pb::TASK_STATUS_QUEUED:
      if (task.next_attempt_at_ms() > 0) {
        retry_at_.emplace(task.next_attempt_at_ms(), task.task_id());
      } else {
        EnqueueLocked(e);
      }
      break;
    case pb::TASK_STATUS_ASSIGNED:
    case pb::TASK_STATUS_RUNNING: {
      // Reserved on its worker as if that worker had just disconnected: it has the
      // grace period to come back and report the attempt, else it is retried.
      WorkerEntry* w = workers_.FindOrAdd(task.worker_device_id());
      if (w->caps.device_id().empty()) {
        w->caps.set_device_id(task.worker_device_id());
        w->status = pb::WORKER_STATUS_OFFLINE;
        // Shifted so that the usual reconnect_grace check gives it restart_grace.
        w->disconnected_at_ms = now + absl::ToInt64Milliseconds(
                                          std::max(absl::ZeroDuration(), options_.restart_grace - options_.reconnect_grace));
      }
      w->running.emplace(task.task_id(), task.attempts());
      break;
    }
    default:
      break;  // finished (RecoverTasksLocked only): held until the cache trims it
  }
  if (task.status() != pb::TASK_STATUS_PENDING) e->accepted = true;
  return e;
}

bool Recovery::PruneDueLocked(int64_t now_ms) {
  if (now_ms - last_prune_ms_ < 60'000 || prune_in_flight_) return false;
  last_prune_ms_ = now_ms;
  prune_in_flight_ = true;
  return true;
}

std::vector<std::string> Recovery::PruneLocked(const absl::StatusOr<std::vector<FinishedRef>>& old) {
  std::vector<std::string> ids;
  if (!old.ok() || old->empty()) {
    if (!old.ok()) spdlog::error("retention: {}", old.status().ToString());
    prune_in_flight_ = false;
    return ids;
  }
  absl::flat_hash_set<std::string> seen;
  for (const FinishedRef& r : *old) {
    if (!seen.insert(r.task_id).second) continue;
    if (TaskEntry* e = tasks_.Find(r.task_id)) {
      if (!IsTerminal(e->task.status())) continue;  // cannot happen: finished is final
      ForgetLocked(r.task_id);                      // still cached
    } else {
      tasks_.ForgetStored(r.task_type, r.status);
    }
    ids.push_back(r.task_id);
  }
  return ids;
}

}  // namespace rc::coordinator
