#include "coordinator/coordinator.h"

#include <algorithm>
#include <optional>

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
  if (e->written_in != operation_) {
    e->written_in = operation_;
    fx.changed.push_back(e->task.task_id());
  }
  if (e->watchers.empty()) return;
  const bool terminal = IsTerminal(e->task.status());
  std::optional<pb::Task> snapshot;
  for (auto& [id, sink] : e->watchers) {
    if (!terminal && sink->TerminalOnly()) continue;
    if (!snapshot.has_value()) snapshot = SnapshotLocked(*e);
    fx.snapshots.emplace_back(sink, *snapshot);
  }
  if (terminal) e->watchers.clear();
}

void Coordinator::AcceptLocked(TaskEntry* e, Effects& fx) {
  tasks_.SetStatus(e, pb::TASK_STATUS_QUEUED);
  EnqueueLocked(e);
  ChangedLocked(e, fx);
}

namespace {

// The answers of one batch, filled in any order; `done` runs once, with the last.
class BatchAnswers {
 public:
  BatchAnswers(size_t n, SubmitBatchDone done)
      : results_(n, absl::InternalError("unanswered")), remaining_(n), done_(std::move(done)) {}

  void Set(size_t i, absl::StatusOr<SubmitResult> r) {
    {
      absl::MutexLock lock(&mu_);
      results_[i] = std::move(r);
      if (--remaining_ > 0) return;
    }
    done_(std::move(results_));  // the last answer: nobody else touches results_ now
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusOr<SubmitResult>> results_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  const SubmitBatchDone done_;
};

}  // namespace

void Coordinator::Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done,
                         const std::string& owner) {
  std::vector<pb::TaskSpec> one;
  one.push_back(std::move(spec));
  SubmitBatch(
      std::move(one), [done = std::move(done)](std::vector<absl::StatusOr<SubmitResult>> r) { done(std::move(r[0])); },
      owner);
}

void Coordinator::SubmitBatch(std::vector<pb::TaskSpec> specs, SubmitBatchDone done, const std::string& owner) {
  if (specs.empty()) {
    done({});
    return;
  }
  auto answers = std::make_shared<BatchAnswers>(specs.size(), std::move(done));
  std::vector<absl::Status> invalid(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) invalid[i] = ValidateAndNormalize(&specs[i], options_.limits);
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> ids;  // the new tasks, accepted together once stored
    std::vector<size_t> slots;     // their places in the batch
    for (size_t i = 0; i < specs.size(); ++i) {
      auto answer = [answers, i](absl::StatusOr<SubmitResult> r) { answers->Set(i, std::move(r)); };
      if (!invalid[i].ok()) {
        fx.callbacks.push_back([answer, s = invalid[i]] { answer(s); });
        continue;
      }
      if (shut_down_) {
        fx.callbacks.push_back([answer] { answer(absl::UnavailableError("coordinator is shutting down")); });
        continue;
      }
      pb::TaskSpec& spec = specs[i];
      if (!spec.idempotency_key().empty()) {
        if (TaskEntry* first = tasks_.FindByIdempotencyKey(owner, spec.idempotency_key())) {
          if (first->task.status() == pb::TASK_STATUS_PENDING) {
            first->waiting_submits.push_back(std::move(answer));  // answered once it is stored
          } else {
            SubmitResult r{first->task.task_id(), first->task.status(), true};
            fx.callbacks.push_back([answer, r] { answer(r); });
          }
          continue;
        }
      }
      if (!owner.empty() && options_.max_unfinished_per_owner > 0 &&
          tasks_.unfinished(owner) >= options_.max_unfinished_per_owner) {
        fx.callbacks.push_back([answer, owner, limit = options_.max_unfinished_per_owner] {
          answer(absl::ResourceExhaustedError(absl::StrCat("submitter '", owner, "' has ", limit,
                                                           " unfinished tasks, the limit (max_queued_per_token)")));
        });
        continue;
      }
      auto entry = std::make_unique<TaskEntry>();
      pb::Task& t = entry->task;
      t.set_task_id(task_ids_.Next("task", clock_->NowMs()));
      t.set_owner(owner);
      t.set_status(pb::TASK_STATUS_PENDING);
      t.set_created_at_ms(clock_->NowMs());
      t.set_revision(1);
      entry->cls = queue_.Intern(spec.task_type(), spec.requirements(), owner);
      entry->key = QueueKey{spec.priority(), next_seq_++};
      t.set_sequence(entry->key.seq);
      *t.mutable_spec() = std::move(spec);
      fx.writes.push_back(t);
      ids.push_back(t.task_id());
      slots.push_back(i);
      tasks_.Insert(std::move(entry));
    }
    if (ids.empty()) return 0;
    fx.after_commit.push_back(
        [this, ids = std::move(ids), slots = std::move(slots), answers](absl::Status stored) {
          Accepted(ids, stored, [&](size_t k, absl::StatusOr<SubmitResult> r) { answers->Set(slots[k], std::move(r)); });
        });
    return 0;
  });
}

void Coordinator::Accepted(const std::vector<std::string>& ids, const absl::Status& stored,
                           const std::function<void(size_t, absl::StatusOr<SubmitResult>)>& answer) {
  std::vector<absl::StatusOr<SubmitResult>> results;
  std::vector<std::vector<std::function<void(absl::StatusOr<SubmitResult>)>>> waiting(ids.size());
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Status error = absl::UnavailableError(absl::StrCat("task store: ", stored.message()));
    for (size_t k = 0; k < ids.size(); ++k) {
      TaskEntry* e = tasks_.Find(ids[k]);
      if (e != nullptr) waiting[k] = std::move(e->waiting_submits);
      if (!stored.ok()) {
        // Not durable: forget it entirely so that nothing unacknowledged runs.
        if (e != nullptr) {
          for (auto& [wid, sink] : e->watchers) fx.aborts.emplace_back(sink, absl::UnavailableError("task was not stored"));
          tasks_.Erase(ids[k]);
        }
        results.push_back(error);
        continue;
      }
      // A cancel may have ended it while the write was in flight (retention may even
      // have pruned it since).
      pb::TaskStatus status = pb::TASK_STATUS_CANCELLED;
      if (e != nullptr) {
        if (e->task.status() == pb::TASK_STATUS_PENDING) AcceptLocked(e, fx);
        status = e->task.status();
      }
      results.push_back(SubmitResult{ids[k], status, false});
    }
    if (stored.ok()) DispatchLocked(fx);
    return 0;
  });
  // Mutate ran its callbacks already; answer after them, outside the lock.
  for (size_t k = 0; k < ids.size(); ++k) {
    for (auto& w : waiting[k]) {
      if (results[k].ok()) {
        w(SubmitResult{results[k]->task_id, results[k]->status, true});
      } else {
        w(results[k].status());
      }
    }
    answer(k, std::move(results[k]));
  }
}

absl::StatusOr<pb::Task> Coordinator::GetTask(const std::string& task_id) const {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
  return SnapshotLocked(*e);
}

void Coordinator::Cancel(const std::string& task_id,
                         std::function<void(absl::StatusOr<pb::CancelTaskResponse>)> done, const Principal& who) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    TaskEntry* e = tasks_.Find(task_id);
    if (e == nullptr) {
      fx.callbacks.push_back(
          [done, task_id] { done(absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"))); });
      return 0;
    }
    if (absl::Status allowed = Authorize(who, Action::kCancel, e->task.owner()); !allowed.ok()) {
      fx.callbacks.push_back([done, allowed] { done(allowed); });
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
    t.set_error_message(who.name.empty() ? "cancelled by client" : absl::StrCat("cancelled by ", who.name));
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

absl::StatusOr<uint64_t> Coordinator::Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink,
                                            const Principal& who) {
  return WatchAll({task_id}, std::move(sink), who)[0];
}

std::vector<absl::StatusOr<uint64_t>> Coordinator::WatchAll(const std::vector<std::string>& task_ids,
                                                            std::shared_ptr<TaskSink> sink, const Principal& who) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<absl::StatusOr<uint64_t>> out;
    out.reserve(task_ids.size());
    for (const std::string& task_id : task_ids) {
      if (shut_down_) {
        out.push_back(absl::UnavailableError("coordinator is shutting down"));
        continue;
      }
      TaskEntry* e = tasks_.Find(task_id);
      if (e == nullptr) {
        out.push_back(absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'")));
        continue;
      }
      if (absl::Status allowed = Authorize(who, Action::kReadTask, e->task.owner()); !allowed.ok()) {
        out.push_back(std::move(allowed));
        continue;
      }
      const bool terminal = IsTerminal(e->task.status());
      if (terminal || !sink->TerminalOnly()) fx.snapshots.emplace_back(sink, SnapshotLocked(*e));
      uint64_t id = next_watch_++;
      if (!terminal) e->watchers.emplace_back(id, sink);
      out.push_back(id);
    }
    return out;
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
