#include "coordinator/coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/task_names.h"
#include "coordinator/coordinator_internal.h"
#include "coordinator/task_validation.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

Coordinator::Coordinator(CoordinatorOptions options, TaskStore* store, Clock* clock)
    : options_(options), store_(store), clock_(clock), started_at_ms_(clock->NowMs()) {}

Coordinator::~Coordinator() = default;

void Coordinator::Deliver(Effects& fx) {
  if (!fx.writes.empty()) {
    store_->Write(std::move(fx.writes), [](absl::Status s) {
      if (!s.ok()) spdlog::error("task store write failed: {}", s.ToString());
    });
  }
  for (auto& [link, msg] : fx.sends) link->Send(std::move(msg));
  for (auto& [link, status] : fx.closes) link->Close(status);
  for (auto& [sink, task] : fx.snapshots) sink->OnTask(task);
  for (auto& [sink, status] : fx.aborts) sink->Abort(status);
}

Coordinator::TaskEntry* Coordinator::FindLocked(const std::string& task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : it->second.get();
}

void Coordinator::SetStatusLocked(TaskEntry* e, pb::TaskStatus s) {
  --status_counts_[e->task.status()];
  ++status_counts_[s];
  e->task.set_status(s);
}

pb::Task Coordinator::SnapshotLocked(const TaskEntry& e) const {
  pb::Task t = e.task;
  if (t.status() == pb::TASK_STATUS_QUEUED) {
    auto it = class_reasons_.find(e.cls);
    if (it != class_reasons_.end()) t.set_unschedulable_reason(it->second);
  }
  return t;
}

void Coordinator::ChangedLocked(TaskEntry* e, Effects& fx) {
  e->task.set_revision(e->task.revision() + 1);
  fx.writes.push_back(e->task);
  if (e->watchers.empty()) return;
  pb::Task snapshot = SnapshotLocked(*e);
  for (auto& [id, sink] : e->watchers) fx.snapshots.emplace_back(sink, snapshot);
  if (IsTerminal(e->task.status())) e->watchers.clear();
}

void Coordinator::AcceptLocked(TaskEntry* e, Effects& fx) {
  SetStatusLocked(e, pb::TASK_STATUS_QUEUED);
  queue_.Push(e->cls, e->key, e->task.task_id());
  if (!class_reasons_.contains(e->cls)) RefreshReasonLocked(e->cls);
  ChangedLocked(e, fx);
  DispatchLocked(fx);
}

void Coordinator::Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done) {
  if (absl::Status s = ValidateAndNormalize(&spec); !s.ok()) {
    done(s);
    return;
  }
  std::optional<pb::Task> created = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> std::optional<pb::Task> {
    if (shut_down_) {
      fx.callbacks.push_back([done] { done(absl::UnavailableError("coordinator is shutting down")); });
      return std::nullopt;
    }
    if (!spec.idempotency_key().empty()) {
      auto it = by_idempotency_key_.find(spec.idempotency_key());
      if (it != by_idempotency_key_.end()) {
        SubmitResult r{it->second, FindLocked(it->second)->task.status(), true};
        fx.callbacks.push_back([done, r] { done(r); });
        return std::nullopt;
      }
    }
    auto entry = std::make_unique<TaskEntry>();
    pb::Task& t = entry->task;
    t.set_task_id(NewId("task"));
    t.set_status(pb::TASK_STATUS_PENDING);
    t.set_created_at_ms(clock_->NowMs());
    entry->cls = queue_.Intern(spec.task_type(), spec.requirements());
    entry->key = QueueKey{spec.priority(), next_seq_++};
    *t.mutable_spec() = std::move(spec);
    ++status_counts_[pb::TASK_STATUS_PENDING];
    order_.push_back(t.task_id());
    if (!t.spec().idempotency_key().empty()) by_idempotency_key_[t.spec().idempotency_key()] = t.task_id();
    pb::Task copy = t;
    tasks_.emplace(t.task_id(), std::move(entry));
    return copy;
  });
  if (!created.has_value()) return;
  std::string id = created->task_id();
  store_->Write({std::move(*created)}, [this, id, done](absl::Status stored) {
    Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      TaskEntry* e = FindLocked(id);
      if (!stored.ok()) {
        // Not durable: forget it entirely so that nothing unacknowledged runs.
        if (e != nullptr) {
          for (auto& [wid, sink] : e->watchers) {
            fx.aborts.emplace_back(sink, absl::UnavailableError("task was not stored"));
          }
          --status_counts_[e->task.status()];
          by_idempotency_key_.erase(e->task.spec().idempotency_key());
          order_.erase(std::find(order_.begin(), order_.end(), id));
          tasks_.erase(id);
        }
        fx.callbacks.push_back([done, stored] {
          done(absl::UnavailableError(absl::StrCat("task store: ", stored.message())));
        });
        return 0;
      }
      // A cancel may have ended it while the write was in flight.
      if (e->task.status() == pb::TASK_STATUS_PENDING) AcceptLocked(e, fx);
      SubmitResult r{id, e->task.status(), false};
      fx.callbacks.push_back([done, r] { done(r); });
      return 0;
    });
  });
}

absl::StatusOr<pb::Task> Coordinator::GetTask(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = FindLocked(task_id);
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
  return SnapshotLocked(*e);
}

absl::StatusOr<pb::CancelTaskResponse> Coordinator::Cancel(const std::string& task_id) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<pb::CancelTaskResponse> {
    TaskEntry* e = FindLocked(task_id);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
    pb::CancelTaskResponse resp;
    resp.set_task_id(task_id);
    pb::Task& t = e->task;
    if (IsTerminal(t.status())) {
      resp.set_status(t.status());
      return resp;
    }
    if (t.status() == pb::TASK_STATUS_QUEUED) queue_.Remove(e->cls, e->key);
    const bool on_worker = t.status() == pb::TASK_STATUS_ASSIGNED || t.status() == pb::TASK_STATUS_RUNNING;
    if (on_worker) {
      auto w = workers_.find(t.worker_device_id());
      if (w != workers_.end() && w->second->link != nullptr) {
        pb::CancelAttempt* c = fx.MessageFor(w->second->link).add_cancels();
        c->set_task_id(task_id);
        c->set_attempt(t.attempts());
      }
    }
    const int64_t now = clock_->NowMs();
    SetStatusLocked(e, pb::TASK_STATUS_CANCELLED);
    t.set_error_message("cancelled by client");
    t.set_finished_at_ms(now);
    if (on_worker) {
      pb::Attempt* a = t.mutable_attempt_history(t.attempt_history_size() - 1);
      a->set_status(pb::TASK_STATUS_CANCELLED);
      a->set_finished_at_ms(now);
    }
    ChangedLocked(e, fx);
    resp.set_cancelled(true);
    resp.set_status(pb::TASK_STATUS_CANCELLED);
    return resp;
  });
}

absl::StatusOr<std::vector<pb::Task>> Coordinator::ListTasks(const TaskFilter& f) const {
  if (f.limit < 1 || f.limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit: must be 1..10000, got ", f.limit));
  }
  absl::MutexLock lock(&mu_);
  std::vector<pb::Task> out;
  for (auto it = order_.rbegin(); it != order_.rend() && static_cast<int>(out.size()) < f.limit; ++it) {
    const TaskEntry& e = *tasks_.at(*it);
    if (f.status != pb::TASK_STATUS_UNSPECIFIED && e.task.status() != f.status) continue;
    if (!f.task_type.empty() && e.task.spec().task_type() != f.task_type) continue;
    if (!f.worker_device_id.empty() && e.task.worker_device_id() != f.worker_device_id) continue;
    out.push_back(SnapshotLocked(e));
  }
  return out;
}

absl::StatusOr<uint64_t> Coordinator::Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<uint64_t> {
    if (shut_down_) return absl::UnavailableError("coordinator is shutting down");
    TaskEntry* e = FindLocked(task_id);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
    fx.snapshots.emplace_back(sink, SnapshotLocked(*e));
    uint64_t id = next_watch_++;
    if (!IsTerminal(e->task.status())) e->watchers.emplace_back(id, std::move(sink));
    return id;
  });
}

void Coordinator::Unwatch(const std::string& task_id, uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = FindLocked(task_id);
  if (e == nullptr) return;
  std::erase_if(e->watchers, [&](const auto& w) { return w.first == watch_id; });
}

void Coordinator::Shutdown() {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    shut_down_ = true;
    for (auto& [id, w] : workers_) {
      if (w->link != nullptr) fx.closes.emplace_back(std::move(w->link), absl::UnavailableError("coordinator is shutting down"));
      w->link = nullptr;
    }
    for (auto& [id, e] : tasks_) {
      for (auto& [wid, sink] : e->watchers) {
        fx.aborts.emplace_back(sink, absl::UnavailableError("coordinator is shutting down"));
      }
      e->watchers.clear();
    }
    return 0;
  });
}

}  // namespace rc::coordinator
