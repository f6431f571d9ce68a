#include "coordinator/core/submissions.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

absl::Status Submissions::OwnerLimitsLocked(const std::string& owner, int64_t bytes) {
  if (owner.empty()) return absl::OkStatus();  // the unnamed loopback caller is not limited
  if (options_.max_unfinished_per_owner > 0 && tasks_.unfinished(owner) >= options_.max_unfinished_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat("submitter '", owner, "' has ", options_.max_unfinished_per_owner,
                                                     " unfinished tasks, the limit (max_queued_per_token)"));
  }
  if (options_.max_unfinished_bytes_per_owner > 0 &&
      tasks_.unfinished_bytes(owner) + bytes > options_.max_unfinished_bytes_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "submitter '", owner, "' has ", tasks_.unfinished_bytes(owner),
        " bytes of payloads in unfinished tasks; this payload of ", bytes, " bytes would pass the limit of ",
        options_.max_unfinished_bytes_per_owner, " (max_queued_bytes_per_token)"));
  }
  return absl::OkStatus();
}

Submissions::Recorded Submissions::SubmitLocked(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                                                const std::vector<absl::Status>& invalid,
                                                const std::vector<std::optional<Found>>& stored,
                                                uint64_t evictions_before, const Answer& answer_at,
                                                const std::string& owner, std::vector<size_t>* again, Effects& fx) {
  Recorded recorded;
  for (size_t i : todo) {
    auto answer = [answer_at, i](absl::StatusOr<SubmitResult> r) { answer_at(i, std::move(r)); };
    auto refuse = [&](absl::Status s) { fx.callbacks.push_back([answer, s = std::move(s)] { answer(s); }); };
    if (!invalid[i].ok()) {
      refuse(invalid[i]);
      continue;
    }
    if (shut_down_) {
      refuse(absl::UnavailableError("coordinator is shutting down"));
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
        again->push_back(i);
        continue;
      }
      if (!found.ok()) {
        refuse(absl::UnavailableError(absl::StrCat("task store: idempotency_key lookup: ", found.status().message())));
        continue;
      }
    }
    const int64_t bytes = static_cast<int64_t>(spec.payload().size());
    if (absl::Status limited = OwnerLimitsLocked(owner, bytes); !limited.ok()) {
      refuse(std::move(limited));
      continue;
    }
    auto entry = std::make_unique<TaskEntry>();
    pb::Task& t = entry->task;
    t.set_task_id(task_ids_.Next("task", clock_->NowMs()));
    t.set_owner(owner);
    t.set_status(pb::TASK_STATUS_PENDING);  // a new record, counted from here by the table
    t.set_created_at_ms(clock_->NowMs());
    t.set_revision(1);
    entry->cls = queue_.Intern(spec.task_type(), spec.requirements(), owner);
    entry->key = QueueKey{spec.priority(), next_seq_++};
    entry->payload_bytes = bytes;
    payload_bytes_in_ram_ += bytes;  // until accepted (AdmitPayloadLocked)
    t.set_sequence(entry->key.seq);
    *t.mutable_spec() = std::move(spec);
    fx.writes.push_back(t);
    recorded.ids.push_back(t.task_id());
    recorded.slots.push_back(i);
    tasks_.Insert(std::move(entry));
  }
  return recorded;
}

void Submissions::AcceptLocked(TaskEntry* e, Effects& fx) {
  AdmitPayloadLocked(e);
  if (!lifecycle_.Accept(e).ok()) return;  // only pending tasks are accepted
  EnqueueLocked(e);
  ChangedLocked(e, fx);
}

std::vector<absl::StatusOr<SubmitResult>> Submissions::AcceptedLocked(
    const std::vector<std::string>& ids, const absl::Status& stored,
    std::vector<std::vector<std::function<void(absl::StatusOr<SubmitResult>)>>>* waiting, Effects& fx) {
  std::vector<absl::StatusOr<SubmitResult>> results;
  waiting->resize(ids.size());
  const absl::Status error = absl::UnavailableError(absl::StrCat("task store: ", stored.message()));
  for (size_t k = 0; k < ids.size(); ++k) {
    TaskEntry* e = tasks_.Find(ids[k]);
    if (e != nullptr) (*waiting)[k] = std::move(e->waiting_submits);
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
  return results;
}

bool Submissions::CancelLocked(const std::string& task_id,
                               const std::function<void(absl::StatusOr<pb::CancelTaskResponse>)>& done,
                               const TaskAccess& allow, const std::string& by, Effects& fx) {
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return false;  // finished and evicted, or unknown
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
  const pb::TaskStatus from = t.status();
  const std::string device = t.worker_device_id();
  const int32_t attempt = t.attempts();
  if (absl::Status s = lifecycle_.Cancel(e, by.empty() ? "cancelled by client" : absl::StrCat("cancelled by ", by),
                                         clock_->NowMs());
      !s.ok()) {
    spdlog::error("cancel: {}", s.ToString());  // every unfinished status may be cancelled
    fx.callbacks.push_back([done, s] { done(s); });
    return true;
  }
  if (from == pb::TASK_STATUS_QUEUED) queue_.Remove(e->cls, e->key);  // no-op while it waits out a retry backoff
  if (from == pb::TASK_STATUS_ASSIGNED || from == pb::TASK_STATUS_RUNNING) {
    // Its slot stays reserved until the worker confirms the attempt ended.
    WorkerEntry* w = workers_.Find(device);
    if (w != nullptr && w->link != nullptr) {
      pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
      c->set_task_id(task_id);
      c->set_attempt(attempt);
    }
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
}

void Submissions::ShutdownLocked(Effects& fx) {
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
}

}  // namespace rc::coordinator
