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

std::vector<std::string> Submissions::NotInMemoryLocked(const std::vector<pb::TaskSpec>& specs,
                                                        const std::vector<size_t>& todo,
                                                        const std::vector<absl::Status>& invalid, const Submitter& by,
                                                        Lookups* looked) {
  looked->owner = by.owner;
  looked->evictions_before = keyed_evictions_;
  std::vector<std::string> absent;
  auto look = [&](const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (tasks_.Find(id) == nullptr && !looked->records.contains(id)) {
      looked->records.emplace(id, std::nullopt);  // a placeholder until read
      absent.push_back(id);
    }
  };
  if (!by.parent_task_id.empty()) {
    if (TaskEntry* parent = tasks_.Find(by.parent_task_id)) looked->owner = parent->task.owner();
    look(by.parent_task_id);
  }
  for (size_t i : todo) {
    if (!invalid[i].ok()) continue;
    for (const pb::Dependency& d : specs[i].after()) {
      if (!d.has_after_index()) look(d.task_id());
    }
  }
  return absent;
}

std::optional<absl::Status> Submissions::DependenciesLocked(const pb::TaskSpec& spec, size_t i, const Lookups& looked,
                                                            const BatchIds& batch, const TaskAccess& may_depend_on,
                                                            std::vector<TaskEntry*>* unended, std::string* never) {
  static const StoredRecords kNone;
  for (int k = 0; k < spec.after_size(); ++k) {
    const pb::Dependency& d = spec.after(k);
    DependencyState st;
    std::string id = d.task_id();
    if (d.has_after_index()) {
      const auto j = static_cast<size_t>(d.after_index());
      if (j >= i) {
        return absl::InvalidArgumentError(absl::StrCat(
            "after[", k, "].after_index: ", j, " is not an earlier entry of this batch (entry ", i,
            " may wait only for entries before it: itself or a later one would make a cycle)"));
      }
      if (batch.state[j] == BatchIds::kRefused) {
        return absl::InvalidArgumentError(
            absl::StrCat("after[", k, "].after_index: entry ", j, " of this batch was refused"));
      }
      if (batch.state[j] == BatchIds::kOpen) return std::nullopt;  // answered in a later round
      pb::Dependency named = d;
      named.set_task_id(batch.ids[j]);
      named.clear_after_index();
      auto found = batch.stored_status.find(j);
      st = found != batch.stored_status.end() && tasks_.Find(named.task_id()) == nullptr
               ? Ended(named, found->second)
               : DependencyLocked(named, kNone);
      id = named.task_id();
    } else {
      st = DependencyLocked(d, looked.records);
      if (st.record != nullptr && may_depend_on) {
        if (absl::Status s = may_depend_on(*st.record); !s.ok()) {
          return absl::Status(s.code(), absl::StrCat("after[", k, "].task_id: ", s.message()));
        }
      }
    }
    switch (st.kind) {
      case DependencyState::kUnended:
        unended->push_back(st.entry);
        break;
      case DependencyState::kMet:
        break;
      case DependencyState::kNever:
        if (never->empty()) *never = st.why;
        break;
      case DependencyState::kUnknown:
        return absl::InvalidArgumentError(absl::StrCat("after[", k, "].task_id: no task with id '", id, "'"));
      case DependencyState::kLookup:
        return std::nullopt;  // it left memory since it was looked for
      case DependencyState::kError:
        return absl::UnavailableError(absl::StrCat("after[", k, "].task_id: ", st.why));
    }
  }
  return absl::OkStatus();
}

Submissions::Recorded Submissions::SubmitLocked(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                                                const std::vector<absl::Status>& invalid, const Lookups& looked,
                                                const Answer& answer_at, const Submitter& by, BatchIds* batch,
                                                std::vector<size_t>* again, Effects& fx) {
  Recorded recorded;
  for (size_t i : todo) {
    auto answer = [answer_at, i](absl::StatusOr<SubmitResult> r) { answer_at(i, std::move(r)); };
    auto refuse = [&](absl::Status s) {
      batch->state[i] = BatchIds::kRefused;
      fx.callbacks.push_back([answer, s = std::move(s)] { answer(s); });
    };
    auto stands_for = [&](const std::string& id) {
      batch->state[i] = BatchIds::kTask;
      batch->ids[i] = id;
    };
    if (!invalid[i].ok()) {
      refuse(invalid[i]);
      continue;
    }
    if (shut_down_) {
      refuse(absl::UnavailableError("coordinator is shutting down"));
      continue;
    }
    pb::TaskSpec& spec = specs[i];
    // A child's parent must be running (or about to): its attempt submits it.
    TaskEntry* parent = nullptr;
    if (!by.parent_task_id.empty()) {
      parent = tasks_.Find(by.parent_task_id);
      if (parent == nullptr || IsTerminal(parent->task.status())) {
        auto stored = looked.records.find(by.parent_task_id);
        if (parent == nullptr && stored == looked.records.end()) {
          again->push_back(i);  // it left memory since it was looked for
          continue;
        }
        const pb::Task* known = parent != nullptr                                  ? &parent->task
                                : stored->second.ok() && stored->second->has_value() ? &**stored->second
                                                                                       : nullptr;
        if (known == nullptr || !IsTerminal(known->status())) {
          refuse(stored->second.ok() ? absl::NotFoundError(absl::StrCat("parent task '", by.parent_task_id,
                                                                        "': no such task"))
                                     : absl::UnavailableError(absl::StrCat("task store: parent task: ",
                                                                           stored->second.status().message())));
        } else {
          refuse(absl::FailedPreconditionError(absl::StrCat("parent task ", by.parent_task_id, " has ended ",
                                                            StatusName(known->status()),
                                                            ": only a running task may submit children")));
        }
        continue;
      }
    }
    const std::string& owner = parent != nullptr ? parent->task.owner() : by.owner;
    if (!spec.idempotency_key().empty()) {
      if (TaskEntry* first = tasks_.FindByIdempotencyKey(owner, spec.idempotency_key(), by.parent_task_id)) {
        stands_for(first->task.task_id());
        if (NotStoredYet(*first)) {
          first->waiting_submits.push_back(std::move(answer));  // answered once it is stored
        } else {
          SubmitResult r{first->task.task_id(), first->task.status(), true};
          fx.callbacks.push_back([answer, r] { answer(r); });
        }
        continue;
      }
      const Found& found = *looked.keys[i];
      if (found.ok() && found->has_value() && owner == looked.owner) {
        stands_for((*found)->first);
        if (IsTerminal((*found)->second)) batch->stored_status[i] = (*found)->second;
        SubmitResult r{(*found)->first, (*found)->second, true};
        fx.callbacks.push_back([answer, r] { answer(r); });
        continue;
      }
      if (keyed_evictions_ != looked.evictions_before || owner != looked.owner) {
        again->push_back(i);
        continue;
      }
      if (!found.ok()) {
        refuse(absl::UnavailableError(absl::StrCat("task store: idempotency_key lookup: ", found.status().message())));
        continue;
      }
    }
    std::vector<TaskEntry*> unended;
    std::string never;
    std::optional<absl::Status> deps =
        DependenciesLocked(spec, i, looked, *batch, by.may_depend_on, &unended, &never);
    if (!deps.has_value()) {
      again->push_back(i);
      continue;
    }
    if (!deps->ok()) {
      refuse(*std::move(deps));
      continue;
    }
    const int64_t bytes = static_cast<int64_t>(spec.payload().size());
    if (absl::Status limited = OwnerLimitsLocked(owner, bytes); !limited.ok()) {
      refuse(std::move(limited));
      continue;
    }
    if (parent != nullptr) {
      if (absl::Status limited = ChildLimitsLocked(*parent); !limited.ok()) {
        refuse(std::move(limited));
        continue;
      }
      WriteAssignmentNowLocked(parent, fx);  // its token's digest is stored with its child
    }
    // Stored with the ids the batch entries stand for.
    for (pb::Dependency& d : *spec.mutable_after()) {
      if (!d.has_after_index()) continue;
      d.set_task_id(batch->ids[d.after_index()]);
      d.clear_after_index();
    }
    auto entry = std::make_unique<TaskEntry>();
    pb::Task& t = entry->task;
    t.set_task_id(task_ids_.Next("task", clock_->NowMs()));
    t.set_owner(owner);
    PlaceInTree(parent != nullptr ? &parent->task : nullptr, &t);
    t.set_status(pb::TASK_STATUS_PENDING);  // a new record, counted from here by the table
    t.set_created_at_ms(clock_->NowMs());
    t.set_revision(1);
    entry->cls = queue_.Intern(spec.task_type(), spec.requirements(), owner, t.depth());  // depth set above
    entry->key = QueueKey{spec.priority(), next_seq_++};
    entry->payload_bytes = bytes;
    payload_bytes_in_ram_ += bytes;  // until accepted (AdmitPayloadLocked)
    t.set_sequence(entry->key.seq);
    *t.mutable_spec() = std::move(spec);
    if (never.empty() && !unended.empty()) {
      std::vector<std::string> ids;
      ids.reserve(unended.size());
      for (const TaskEntry* dep : unended) ids.push_back(dep->task.task_id());
      (void)lifecycle_.AwaitDependencies(entry.get(), std::move(ids));  // new and pending: allowed
    }
    recorded.ids.push_back(t.task_id());
    recorded.slots.push_back(i);
    stands_for(t.task_id());
    TaskEntry* e = tasks_.Insert(std::move(entry));
    if (never.empty()) {
      LinkLocked(e, unended);
      // A task that will be queued once stored goes straight to a free worker when it can
      // (TaskDispatch::PlaceLocked); a child takes the usual way (its parent's slots).
      if (unended.empty() && parent == nullptr) (void)PlaceLocked(e, fx);
    } else {
      LinkLocked(e, {});
      (void)StopLocked(e, never, fx);  // a dependency already ended against its condition
    }
    fx.writes.push_back(ToRecord(e->task));  // the first record carries the payload
  }
  return recorded;
}

void Submissions::AcceptLocked(TaskEntry* e, Effects& fx) {
  AdmitPayloadLocked(e);
  // Only pending tasks, and tasks placed with their submit, are accepted.
  const bool accepted = lifecycle_.Accept(e).ok();
  if (e->sent_unstored) {
    e->sent_unstored = false;  // on its worker since its submit, or ended, or back in line
    return;
  }
  if (e->placed != nullptr) return SendPlacedLocked(e, /*stored=*/true, fx);
  if (!accepted || e->task.status() != pb::TASK_STATUS_QUEUED) return;  // else durable, waiting for dependencies
  EnqueueLocked(e);
  // Not written: the stored PENDING record says as much, as recovery re-accepts it and
  // recomputes its dependencies (Recovery::ResumePendingLocked); a task costs one store
  // write less (issue 18).
  ChangedLocked(e, fx, /*write=*/false);
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
      // Not durable: forget it entirely, so that nothing unacknowledged runs on (a task
      // sent before its commit is stopped on its worker). A later write of such a task (its
      // outcome, reported meanwhile) may still commit: a row nobody was told about, never a
      // lost one.
      if (e != nullptr) {
        for (auto& [wid, sink] : e->watchers) fx.aborts.emplace_back(sink, absl::UnavailableError("task was not stored"));
        e->watchers.clear();
        SendPlacedLocked(e, /*stored=*/false, fx);  // frees its worker's slot
        if (e->sent_unstored) RecallUnstoredLocked(e, fx);  // sent before the commit: stopped there
        UnstoredLocked(e, fx);
        ForgetLocked(ids[k]);
      }
      results.push_back(error);
      continue;
    }
    // A cancel may have ended it while the write was in flight (retention may even
    // have pruned it since).
    pb::TaskStatus status = pb::TASK_STATUS_CANCELLED;
    if (e != nullptr) {
      if (NotStoredYet(*e)) AcceptLocked(e, fx);
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
  if (absl::Status s = StopLocked(e, by.empty() ? "cancelled by client" : absl::StrCat("cancelled by ", by), fx);
      !s.ok()) {
    spdlog::error("cancel: {}", s.ToString());  // every unfinished status may be cancelled
    fx.callbacks.push_back([done, s] { done(s); });
    return true;
  }
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
