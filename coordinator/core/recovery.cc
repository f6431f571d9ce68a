// Coordinator: rebuilding state from the store at startup, and retention.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

namespace {
// Retention deletes at most this many records per tick, so that one Tick stays short.
constexpr size_t kPruneBatch = 10000;
}  // namespace

absl::Status Coordinator::RecoverFromStore() {
  absl::StatusOr<RecoveryData> data = store_->LoadForRecovery(options_.memory_payload_budget_bytes);
  if (!data.ok()) return data.status();
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t now = clock_->NowMs();
    next_seq_ = std::max(next_seq_, data->max_sequence + 1);
    if (!data->max_task_id.empty()) task_ids_.After(data->max_task_id, now);
    int64_t finished = 0, in_store = 0;
    for (const auto& [type, status, n] : data->finished_counts) {
      tasks_.CountStored(type, status, n);
      finished += n;
    }
    for (RecoveredTask& r : data->unfinished) {
      in_store += r.payload_loaded ? 0 : 1;
      RestoreLocked(std::move(r.task), r.payload_bytes, r.payload_loaded, now);
    }
    spdlog::info("recovered {} unfinished tasks ({} with their payload left in the store) and {} finished (in the store)",
                 data->unfinished.size(), in_store, finished);
    return 0;
  });
  return absl::OkStatus();
}

void Coordinator::Recover(std::vector<pb::Task> tasks) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t now = clock_->NowMs();
    for (pb::Task& t : tasks) {
      const auto bytes = static_cast<int64_t>(t.spec().payload().size());
      RestoreLocked(std::move(t), bytes, true, now);
    }
    spdlog::info("recovered {} tasks", tasks.size());
    return 0;
  });
}

void Coordinator::RestoreLocked(pb::Task t, int64_t payload_bytes, bool payload_loaded, int64_t now) {
  auto entry = std::make_unique<TaskEntry>();
  entry->cls = queue_.Intern(t.spec().task_type(), t.spec().requirements(), t.owner());
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
      tasks_.SetStatus(e, pb::TASK_STATUS_QUEUED);
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
        w->disconnected_at_ms =
            now + absl::ToInt64Milliseconds(std::max(absl::ZeroDuration(), options_.restart_grace - options_.reconnect_grace));
      }
      w->running.emplace(task.task_id(), task.attempts());
      break;
    }
    default:
      break;  // finished (Recover only): held until the cache trims it
  }
}

void Coordinator::PruneStored(int64_t now_ms) {
  const int64_t cutoff = now_ms - absl::ToInt64Milliseconds(options_.retention);
  absl::StatusOr<std::vector<FinishedRef>> old = store_->FinishedBefore(cutoff, kPruneBatch);
  std::vector<std::string> ids;
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!old.ok() || old->empty()) {
      if (!old.ok()) spdlog::error("retention: {}", old.status().ToString());
      prune_in_flight_ = false;
      return 0;
    }
    absl::flat_hash_set<std::string> seen;
    for (const FinishedRef& r : *old) {
      if (!seen.insert(r.task_id).second) continue;
      if (TaskEntry* e = tasks_.Find(r.task_id)) {
        if (!IsTerminal(e->task.status())) continue;  // cannot happen: finished is final
        ForgetLocked(r.task_id);  // still cached
      } else {
        tasks_.ForgetStored(r.task_type, r.status);
      }
      ids.push_back(r.task_id);
    }
    return 0;
  });
  if (ids.empty()) return;
  spdlog::info("retention: pruning {} tasks finished more than {} ago", ids.size(),
               absl::FormatDuration(options_.retention));
  // Another prune waits for these deletes: until then the store would list them again.
  store_->Delete(std::move(ids), [this](absl::Status s) {
    if (!s.ok()) spdlog::error("task store delete failed: {}", s.ToString());
    absl::MutexLock lock(&mu_);
    prune_in_flight_ = false;
  });
}

}  // namespace rc::coordinator
