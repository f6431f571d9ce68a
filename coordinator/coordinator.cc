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

namespace {
// Set while this thread delivers effects (see Mutate): where inline store callbacks wait.
thread_local std::vector<std::function<void()>>* tl_deferred = nullptr;
}  // namespace

void Coordinator::Deliver(Effects& fx, std::vector<std::function<void()>>* deferred) {
  if (!fx.writes.empty()) {
    auto waiting = std::make_shared<std::vector<std::function<void(absl::Status)>>>(std::move(fx.after_commit));
    tl_deferred = deferred;
    store_->Write(std::move(fx.writes), [waiting](absl::Status s) {
      if (!s.ok()) spdlog::error("task store write failed: {}", s.ToString());
      auto run = [waiting, s] {
        for (auto& cb : *waiting) cb(s);
      };
      if (tl_deferred != nullptr) {
        tl_deferred->push_back(std::move(run));
      } else {
        run();
      }
    });
    tl_deferred = nullptr;
  } else {
    for (auto& cb : fx.after_commit) deferred->push_back([cb = std::move(cb)] { cb(absl::OkStatus()); });
  }
  if (!fx.deletes.empty()) {
    store_->Delete(std::move(fx.deletes), [](absl::Status s) {
      if (!s.ok()) spdlog::error("task store delete failed: {}", s.ToString());
    });
  }
  for (auto& [link, msg] : fx.sends) link->Send(std::move(msg));
  for (auto& [link, status] : fx.closes) link->Close(status);
  for (auto& [sink, task] : fx.snapshots) sink->OnTask(task);
  for (auto& [sink, status] : fx.aborts) sink->Abort(status);
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
  if (IsTerminal(e->task.status()) && e->task.finished_at_ms() > 0) {
    end_to_end_latency_.Observe((e->task.finished_at_ms() - e->task.created_at_ms()) / 1000.0);
  }
  fx.writes.push_back(e->task);
  if (e->watchers.empty()) return;
  pb::Task snapshot = SnapshotLocked(*e);
  for (auto& [id, sink] : e->watchers) fx.snapshots.emplace_back(sink, snapshot);
  if (IsTerminal(e->task.status())) e->watchers.clear();
}

void Coordinator::AcceptLocked(TaskEntry* e, Effects& fx) {
  tasks_.SetStatus(e, pb::TASK_STATUS_QUEUED);
  EnqueueLocked(e);
  ChangedLocked(e, fx);
  DispatchLocked(fx);
}

void Coordinator::Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done) {
  if (absl::Status s = ValidateAndNormalize(&spec); !s.ok()) {
    done(s);
    return;
  }
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (shut_down_) {
      fx.callbacks.push_back([done] { done(absl::UnavailableError("coordinator is shutting down")); });
      return 0;
    }
    if (!spec.idempotency_key().empty()) {
      if (TaskEntry* first = tasks_.FindByIdempotencyKey(spec.idempotency_key())) {
        if (first->task.status() == pb::TASK_STATUS_PENDING) {
          first->waiting_submits.push_back(std::move(done));  // answered once it is stored
        } else {
          SubmitResult r{first->task.task_id(), first->task.status(), true};
          fx.callbacks.push_back([done, r] { done(r); });
        }
        return 0;
      }
    }
    auto entry = std::make_unique<TaskEntry>();
    pb::Task& t = entry->task;
    t.set_task_id(NewId("task"));
    t.set_status(pb::TASK_STATUS_PENDING);
    t.set_created_at_ms(clock_->NowMs());
    t.set_revision(1);
    entry->cls = queue_.Intern(spec.task_type(), spec.requirements());
    entry->key = QueueKey{spec.priority(), next_seq_++};
    t.set_sequence(entry->key.seq);
    *t.mutable_spec() = std::move(spec);
    fx.writes.push_back(t);
    fx.after_commit.push_back([this, id = t.task_id(), done = std::move(done)](absl::Status stored) {
      Accepted(id, stored, done);
    });
    tasks_.Insert(std::move(entry));
    return 0;
  });
}

void Coordinator::Accepted(const std::string& id, const absl::Status& stored,
                           const std::function<void(absl::StatusOr<SubmitResult>)>& done) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    TaskEntry* e = tasks_.Find(id);
    std::vector<std::function<void(absl::StatusOr<SubmitResult>)>> waiting;
    if (e != nullptr) waiting = std::move(e->waiting_submits);
    if (!stored.ok()) {
      // Not durable: forget it entirely so that nothing unacknowledged runs.
      if (e != nullptr) {
        for (auto& [wid, sink] : e->watchers) fx.aborts.emplace_back(sink, absl::UnavailableError("task was not stored"));
        tasks_.Erase(id);
      }
      absl::Status error = absl::UnavailableError(absl::StrCat("task store: ", stored.message()));
      fx.callbacks.push_back([done, waiting = std::move(waiting), error] {
        done(error);
        for (auto& w : waiting) w(error);
      });
      return 0;
    }
    // A cancel may have ended it while the write was in flight (retention may even
    // have pruned it since).
    pb::TaskStatus status = pb::TASK_STATUS_CANCELLED;
    if (e != nullptr) {
      if (e->task.status() == pb::TASK_STATUS_PENDING) AcceptLocked(e, fx);
      status = e->task.status();
    }
    fx.callbacks.push_back([done, waiting = std::move(waiting), id, status] {
      done(SubmitResult{id, status, false});
      for (auto& w : waiting) w(SubmitResult{id, status, true});
    });
    return 0;
  });
}

absl::StatusOr<pb::Task> Coordinator::GetTask(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
  return SnapshotLocked(*e);
}

void Coordinator::Cancel(const std::string& task_id,
                         std::function<void(absl::StatusOr<pb::CancelTaskResponse>)> done) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    TaskEntry* e = tasks_.Find(task_id);
    if (e == nullptr) {
      fx.callbacks.push_back(
          [done, task_id] { done(absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"))); });
      return 0;
    }
    pb::CancelTaskResponse resp;
    resp.set_task_id(task_id);
    pb::Task& t = e->task;
    if (IsTerminal(t.status())) {
      resp.set_status(t.status());
      fx.callbacks.push_back([done, resp] { done(resp); });
      return 0;
    }
    if (t.status() == pb::TASK_STATUS_QUEUED) {
      queue_.Remove(e->cls, e->key);  // no-op while it waits out a retry backoff
      t.set_next_attempt_at_ms(0);
    }
    const bool on_worker = t.status() == pb::TASK_STATUS_ASSIGNED || t.status() == pb::TASK_STATUS_RUNNING;
    if (on_worker) {
      WorkerEntry* w = workers_.Find(t.worker_device_id());
      if (w != nullptr && w->link != nullptr) {
        pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
        c->set_task_id(task_id);
        c->set_attempt(t.attempts());
      }
    }
    const int64_t now = clock_->NowMs();
    tasks_.SetStatus(e, pb::TASK_STATUS_CANCELLED);
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
    fx.after_commit.push_back([done, resp](absl::Status stored) {
      if (stored.ok()) {
        done(resp);
      } else {
        done(absl::UnavailableError(absl::StrCat("task store: ", stored.message())));
      }
    });
    return 0;
  });
}

absl::StatusOr<std::vector<pb::Task>> Coordinator::ListTasks(const TaskFilter& f) const {
  if (f.limit < 1 || f.limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit: must be 1..10000, got ", f.limit));
  }
  absl::MutexLock lock(&mu_);
  std::vector<pb::Task> out;
  for (const TaskEntry* e : tasks_.Newest(f)) out.push_back(SnapshotLocked(*e));
  return out;
}

absl::StatusOr<uint64_t> Coordinator::Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<uint64_t> {
    if (shut_down_) return absl::UnavailableError("coordinator is shutting down");
    TaskEntry* e = tasks_.Find(task_id);
    if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
    fx.snapshots.emplace_back(sink, SnapshotLocked(*e));
    uint64_t id = next_watch_++;
    if (!IsTerminal(e->task.status())) e->watchers.emplace_back(id, std::move(sink));
    return id;
  });
}

void Coordinator::Unwatch(const std::string& task_id, uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return;
  std::erase_if(e->watchers, [&](const auto& w) { return w.first == watch_id; });
}

void Coordinator::Shutdown() {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    shut_down_ = true;
    const absl::Status why = absl::UnavailableError("coordinator is shutting down");
    for (WorkerEntry* w : workers_.All()) {
      if (w->link != nullptr) fx.closes.emplace_back(std::move(w->link), why);
      w->link = nullptr;
    }
    tasks_.ForEach([&](TaskEntry& e) {
      for (auto& [wid, sink] : e.watchers) fx.aborts.emplace_back(sink, why);
      e.watchers.clear();
    });
    return 0;
  });
}

}  // namespace rc::coordinator
