#include "coordinator/core/coordinator.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "coordinator/core/task_validation.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

Coordinator::Coordinator(CoordinatorOptions options, TaskStore* store, Clock* clock)
    : options_(options),
      store_(store),
      clock_(clock),
      started_at_ms_(clock->NowMs()),
      loader_(store, [this](std::vector<PayloadLoader::Unread> unread) { PayloadsUnread(std::move(unread)); }) {}

Coordinator::~Coordinator() {
  completions_.Stop();  // may still deliver: before the loader stops
  loader_.Stop();
}

uint64_t Coordinator::Deliver(Effects& fx) {
  uint64_t ticket = 0;
  if (!fx.writes.empty() || !fx.after_commit.empty()) {
    // Reserved here, under delivery_mu_, so completions run in delivery order.
    ticket = completions_.queue().Reserve();
    const bool wrote = !fx.writes.empty();
    auto finish = [this, wrote, op = fx.operation, waiting = std::move(fx.after_commit)](const absl::Status& s) {
      if (wrote) {
        if (!s.ok()) spdlog::error("task store write failed: {}", s.ToString());
        Committed(op, s);
      }
      for (const auto& cb : waiting) cb(s);
    };
    if (wrote) {
      store_->Write(std::move(fx.writes), [queue = completions_.shared_queue(), ticket,
                                           finish = std::move(finish)](absl::Status s) {
        queue->Complete(ticket, [finish, s] { finish(s); });
      });
    } else {
      completions_.queue().Complete(ticket, [finish = std::move(finish)] { finish(absl::OkStatus()); });
    }
  }
  if (!fx.deletes.empty()) {
    store_->Delete(std::move(fx.deletes), [](absl::Status s) {
      if (!s.ok()) spdlog::error("task store delete failed: {}", s.ToString());
    });
  }
  for (size_t i = 0; i < fx.sends.size(); ++i) {
    auto& [link, msg] = fx.sends[i];
    auto load = fx.payloads_to_load.find(i);
    if (load != fx.payloads_to_load.end()) {
      loader_.SendAfterLoading(link, std::move(msg), std::move(load->second));
    } else if (!loader_.SendInOrder(link, msg)) {
      link->Send(std::move(msg));
    }
  }
  for (auto& [link, status] : fx.closes) link->Close(status);
  for (auto& [sink, task] : fx.snapshots) sink->OnTask(task);
  for (auto& [sink, task] : fx.snapshots_to_load) loader_.NotifyAfterLoading(std::move(sink), std::move(task));
  for (auto& [sink, status] : fx.aborts) sink->Abort(status);
  return ticket;
}

pb::Task Coordinator::SnapshotLocked(const TaskEntry& e) const {
  pb::Task t = e.task;
  if (t.status() == pb::TASK_STATUS_QUEUED) {
    auto it = class_reasons_.find(e.cls);
    if (it != class_reasons_.end()) t.set_unschedulable_reason(it->second);
  }
  return t;
}

pb::Task Coordinator::RecordLocked(TaskEntry& e) {
  if (e.task.spec().payload().empty()) return e.task;
  std::string* payload = e.task.mutable_spec()->mutable_payload();
  std::string held;
  held.swap(*payload);
  pb::Task record = e.task;
  held.swap(*payload);
  return record;
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
    NotifyLocked(*e, sink, *snapshot, fx);
  }
  if (terminal) e->watchers.clear();
}

void Coordinator::NotifyLocked(const TaskEntry& e, const std::shared_ptr<TaskSink>& sink, pb::Task snapshot,
                               Effects& fx) {
  if (NeedsPayload(e)) {
    fx.snapshots_to_load.emplace_back(sink, std::move(snapshot));
  } else {
    fx.snapshots.emplace_back(sink, std::move(snapshot));
  }
}

void Coordinator::AdmitPayloadLocked(TaskEntry* e) {
  // Already counted since its submit (or recovery): it stays if the total fits.
  if (!e->payload_in_ram || payload_bytes_in_ram_ <= options_.memory_payload_budget_bytes) return;
  payload_bytes_in_ram_ -= e->payload_bytes;
  delete e->task.mutable_spec()->release_payload();  // clear_payload() would keep the string and its capacity
  e->payload_in_ram = false;
}

void Coordinator::ForgetLocked(const std::string& task_id) {
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return;
  if (e->payload_in_ram) payload_bytes_in_ram_ -= e->payload_bytes;
  tasks_.Erase(task_id);
}

void Coordinator::AcceptLocked(TaskEntry* e, Effects& fx) {
  AdmitPayloadLocked(e);
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
  std::vector<size_t> all(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) all[i] = i;
  SubmitSome(specs, all, invalid, [answers](size_t i, absl::StatusOr<SubmitResult> r) { answers->Set(i, std::move(r)); },
             owner, 0);
}

void Coordinator::SubmitSome(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                             const std::vector<absl::Status>& invalid, const Answer& answer_at,
                             const std::string& owner, int round) {
  // Idempotency keys of finished tasks evicted from memory are in the store only: look
  // them up before taking the lock. A key whose task was evicted after the lookup is
  // looked up again (keyed_evictions_ tells), so a key never gets a second task.
  using Found = absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>>;
  std::vector<std::optional<Found>> stored(specs.size());
  uint64_t evictions_before = 0;
  bool keyed = false;
  for (size_t i : todo) keyed = keyed || (invalid[i].ok() && !specs[i].idempotency_key().empty());
  if (keyed) {
    {
      absl::MutexLock lock(&mu_);
      evictions_before = keyed_evictions_;
    }
    for (size_t i : todo) {
      if (invalid[i].ok() && !specs[i].idempotency_key().empty()) {
        stored[i] = store_->FindByIdempotencyKey(owner, specs[i].idempotency_key());
      }
    }
  }
  std::vector<size_t> again;  // keys to look up again
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> ids;  // the new tasks, accepted together once stored
    std::vector<size_t> slots;     // their places in the batch
    for (size_t i : todo) {
      auto answer = [answer_at, i](absl::StatusOr<SubmitResult> r) { answer_at(i, std::move(r)); };
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
        const Found& found = *stored[i];
        if (found.ok() && found->has_value()) {
          SubmitResult r{(*found)->first, (*found)->second, true};
          fx.callbacks.push_back([answer, r] { answer(r); });
          continue;
        }
        if (keyed_evictions_ != evictions_before) {
          again.push_back(i);
          continue;
        }
        if (!found.ok()) {
          fx.callbacks.push_back([answer, s = found.status()] {
            answer(absl::UnavailableError(absl::StrCat("task store: idempotency_key lookup: ", s.message())));
          });
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
      const int64_t bytes = static_cast<int64_t>(spec.payload().size());
      if (!owner.empty() && options_.max_unfinished_bytes_per_owner > 0 &&
          tasks_.unfinished_bytes(owner) + bytes > options_.max_unfinished_bytes_per_owner) {
        fx.callbacks.push_back([answer, owner, bytes, held = tasks_.unfinished_bytes(owner),
                                limit = options_.max_unfinished_bytes_per_owner] {
          answer(absl::ResourceExhaustedError(absl::StrCat(
              "submitter '", owner, "' has ", held, " bytes of payloads in unfinished tasks; this payload of ", bytes,
              " bytes would pass the limit of ", limit, " (max_queued_bytes_per_token)")));
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
      entry->payload_bytes = bytes;
      payload_bytes_in_ram_ += bytes;  // until accepted (AdmitPayloadLocked)
      t.set_sequence(entry->key.seq);
      *t.mutable_spec() = std::move(spec);
      fx.writes.push_back(t);
      ids.push_back(t.task_id());
      slots.push_back(i);
      tasks_.Insert(std::move(entry));
    }
    if (ids.empty()) return 0;
    fx.after_commit.push_back(
        [this, ids = std::move(ids), slots = std::move(slots), answer_at](absl::Status stored) {
          Accepted(ids, stored, [&](size_t k, absl::StatusOr<SubmitResult> r) { answer_at(slots[k], std::move(r)); });
        });
    return 0;
  });
  if (again.empty()) return;
  if (round >= 10) {  // finished tasks with keys evicted faster than a lookup: should not happen
    for (size_t i : again) answer_at(i, absl::UnavailableError("idempotency_key: the coordinator is busy; retry"));
    return;
  }
  SubmitSome(specs, again, invalid, answer_at, owner, round + 1);
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
          ForgetLocked(ids[k]);
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

void Coordinator::Cancel(const std::string& task_id,
                         std::function<void(absl::StatusOr<pb::CancelTaskResponse>)> done, const TaskAccess& allow,
                         const std::string& by) {
  const bool in_memory = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    TaskEntry* e = tasks_.Find(task_id);
    if (e == nullptr) return false;  // finished and evicted, or unknown: see below
    if (absl::Status allowed = allow ? allow(e->task) : absl::OkStatus(); !allowed.ok()) {
      fx.callbacks.push_back([done, allowed] { done(allowed); });
      return true;
    }
    pb::CancelTaskResponse resp;
    resp.set_task_id(task_id);
    pb::Task& t = e->task;
    if (IsTerminal(t.status())) {
      resp.set_status(t.status());
      fx.callbacks.push_back([done, resp] { done(resp); });
      return true;
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
    t.set_error_message(by.empty() ? "cancelled by client" : absl::StrCat("cancelled by ", by));
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
    return true;
  });
  if (in_memory) return;
  absl::StatusOr<std::optional<pb::Task>> stored = StoredFinished(task_id);
  if (!stored.ok()) return done(stored.status());
  if (!stored->has_value()) return done(absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'")));
  if (absl::Status allowed = allow ? allow(**stored) : absl::OkStatus(); !allowed.ok()) return done(allowed);
  pb::CancelTaskResponse resp;
  resp.set_task_id(task_id);
  resp.set_status((*stored)->status());
  done(resp);
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
