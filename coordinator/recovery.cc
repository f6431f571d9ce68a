// Coordinator: rebuilding state from the store at startup, and retention.
#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

namespace {
// Retention deletes at most this many records per tick, so that one Tick stays short.
constexpr size_t kPruneBatch = 10000;
}  // namespace

void Coordinator::Recover(std::vector<pb::Task> tasks) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t now = clock_->NowMs();
    size_t queued = 0, held = 0, finished = 0;
    for (pb::Task& t : tasks) {
      auto entry = std::make_unique<TaskEntry>();
      entry->cls = queue_.Intern(t.spec().task_type(), t.spec().requirements(), t.owner());
      entry->key = QueueKey{t.spec().priority(), t.sequence()};
      next_seq_ = std::max(next_seq_, t.sequence() + 1);
      task_ids_.After(t.task_id(), now);
      entry->task = std::move(t);
      TaskEntry* e = tasks_.Insert(std::move(entry));
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
          ++queued;
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
          ++held;
          break;
        }
        default:
          ++finished;
          break;
      }
    }
    spdlog::info("recovered {} tasks: {} queued, {} on workers (awaiting their return), {} finished",
                 queued + held + finished, queued, held, finished);
    return 0;
  });
}

void Coordinator::PruneLocked(int64_t now_ms, Effects& fx) {
  std::vector<std::string> old = tasks_.FinishedBefore(now_ms - absl::ToInt64Milliseconds(options_.retention),
                                                       kPruneBatch);
  if (old.empty()) return;
  for (const std::string& id : old) tasks_.Erase(id);
  fx.deletes.insert(fx.deletes.end(), old.begin(), old.end());
  spdlog::info("retention: pruned {} tasks finished more than {} ago", old.size(),
               absl::FormatDuration(options_.retention));
}

}  // namespace rc::coordinator
