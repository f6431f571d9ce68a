#include "coordinator/core/recovery.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

void Recovery::RecoverLocked(RecoveryData& data) {
  const int64_t now = clock_->NowMs();
  next_seq_ = std::max(next_seq_, data.max_sequence + 1);
  if (!data.max_task_id.empty()) task_ids_.After(data.max_task_id, now);
  int64_t finished = 0, in_store = 0;
  for (const auto& [type, status, n] : data.finished_counts) {
    tasks_.CountStored(type, status, n);
    finished += n;
  }
  for (RecoveredTask& r : data.unfinished) {
    in_store += r.payload_loaded ? 0 : 1;
    RestoreLocked(std::move(r.task), r.payload_bytes, r.payload_loaded, now);
  }
  spdlog::info("recovered {} unfinished tasks ({} with their payload left in the store) and {} finished (in the store)",
               data.unfinished.size(), in_store, finished);
}

void Recovery::RecoverTasksLocked(std::vector<pb::Task> tasks) {
  const int64_t now = clock_->NowMs();
  for (pb::Task& t : tasks) {
    const auto bytes = static_cast<int64_t>(t.spec().payload().size());
    RestoreLocked(std::move(t), bytes, true, now);
  }
  spdlog::info("recovered {} tasks", tasks.size());
}

void Recovery::RestoreLocked(pb::Task t, int64_t payload_bytes, bool payload_loaded, int64_t now) {
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
    case pb::TASK_STATUS_PENDING:  // committed, so possibly acknowledged: run it
      (void)lifecycle_.Accept(e);  // pending: always allowed
      [[fallthrough]];
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
