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
    : TaskReads(std::move(options), store, clock),
      loader_(store, [this](std::vector<PayloadLoader::Unread> unread) { PayloadsUnread(std::move(unread)); }) {}

Coordinator::~Coordinator() {
  completions_.Stop();  // may still deliver: before the loader stops
  loader_.Stop();
}

uint64_t Coordinator::Deliver(Effects& fx) {
  uint64_t ticket = 0;
  if (!fx.writes.empty() || !fx.after_commit.empty() || !fx.worker_acks.empty()) {
    // Reserved here, under delivery_mu_, so completions run in delivery order.
    ticket = completions_.queue().Reserve();
    const bool wrote = !fx.writes.empty();
    // A client waits on the commit (submit, cancel), or it records attempts whose
    // outcomes must not wait for it (HeldSnapshot): commit now. The rest (results,
    // starts, retries) shares the next such commit, also on a quiet store: a client that
    // has its outcome sends its next submit within ~0.1 ms, before a commit of the result
    // alone (~0.2 ms) would be over, and that submit then waited for it (issue 18, sixth
    // session: p50 0.570 -> 0.551 ms, lower in 8 of 11 alternated pairs).
    bool hurry = !fx.after_commit.empty();
    for (const auto& [link, msg] : fx.sends) hurry = hurry || msg.assignments_size() > 0;
    std::vector<std::function<void(absl::Status)>> waiting = std::move(fx.after_commit);
    for (auto& ack : fx.worker_acks) waiting.push_back(std::move(ack));
    auto finish = [this, wrote, op = fx.operation, waiting = std::move(waiting)](const absl::Status& s) {
      if (wrote) {
        if (!s.ok()) spdlog::error("task store write failed: {}", s.ToString());
        Committed(op, s);
      }
      for (const auto& cb : waiting) cb(s);
    };
    if (wrote) {
      auto done = [queue = completions_.shared_queue(), ticket, finish = std::move(finish)](absl::Status s) {
        queue->Complete(ticket, [finish, s] { finish(s); });
      };
      if (hurry) {
        store_->Write(std::move(fx.writes), std::move(done));
      } else {
        store_->WriteUnhurried(std::move(fx.writes), std::move(done));
      }
    } else {
      // Nothing to wait for but earlier writes; with a posting store it runs on the
      // completion thread (Delivered), never on this caller's.
      completions_.queue().Complete(
          ticket, [finish = std::move(finish)] { finish(absl::OkStatus()); }, !completions_.posted());
    }
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
  for (auto& link : fx.flushes) link->Flush();
  for (auto& [link, status] : fx.closes) link->Close(status);
  for (auto& [sink, task] : fx.snapshots) sink->OnTask(std::move(task));
  for (auto& [sink, task] : fx.snapshots_to_load) loader_.NotifyAfterLoading(std::move(sink), std::move(task));
  if (!fx.held.empty()) {
    std::vector<HeldSnapshot> now;
    {
      absl::MutexLock lock(&durable_mu_);
      for (HeldSnapshot& h : fx.held) (ReleasableLocked(h) ? now : held_).push_back(std::move(h));
    }
    Release(now);
  }
  for (auto& [sink, status] : fx.aborts) sink->Abort(status);
  return ticket;
}

void Coordinator::Committed(uint64_t operation, const absl::Status& s) {
  std::vector<HeldSnapshot> now;
  {
    absl::MutexLock lock(&durable_mu_);
    durable_op_ = std::max(durable_op_, operation);
    if (!s.ok()) failed_ops_.insert(operation);
    if (!held_.empty()) {
      auto kept = std::stable_partition(held_.begin(), held_.end(),
                                        [&](const HeldSnapshot& h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(durable_mu_) {
                                          return !ReleasableLocked(h);
                                        });
      std::move(kept, held_.end(), std::back_inserter(now));
      held_.erase(kept, held_.end());
    }
  }
  Release(now);
}

void Coordinator::Release(std::vector<HeldSnapshot>& held) {
  for (HeldSnapshot& h : held) {
    if (h.load) {
      loader_.NotifyAfterLoading(std::move(h.sink), std::move(h.task));
    } else {
      h.sink->OnTask(std::move(h.task));
    }
  }
}

TaskRecord Coordinator::RecordLocked(TaskEntry& e) {
  pb::Task& t = e.task;
  // Serialized from the entry itself, not a copy: live usage samples are not written
  // (core_state.h) and the payload was written with the task's first record, so both
  // leave the task while it is serialized and come back after.
  std::optional<pb::ResourceUsage> live;
  if (t.has_resource_usage()) {
    live = t.resource_usage();
    StripLiveUsage(&t);
  }
  std::string payload;
  if (t.has_spec()) t.mutable_spec()->mutable_payload()->swap(payload);
  TaskRecord record = ToRecord(t);
  if (t.has_spec()) t.mutable_spec()->mutable_payload()->swap(payload);
  if (live.has_value()) *t.mutable_resource_usage() = *std::move(live);
  return record;
}

namespace {

// The answers of one batch, filled in any order; `done` runs once, with the last.
class BatchAnswers {
 public:
  BatchAnswers(size_t n, SubmitBatchDone done)
      : results_(n, absl::InternalError("unanswered")), remaining_(n), done_(std::move(done)) {}

  void Set(size_t i, absl::StatusOr<SubmitResult> r) {
    std::vector<absl::StatusOr<SubmitResult>> all;
    {
      absl::MutexLock lock(&mu_);
      results_[i] = std::move(r);
      if (--remaining_ > 0) return;
      all = std::move(results_);  // the last answer: taken under the lock, answered outside it
    }
    done_(std::move(all));
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::StatusOr<SubmitResult>> results_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  const SubmitBatchDone done_;
};

}  // namespace

void Coordinator::Submit(pb::TaskSpec spec, std::function<void(absl::StatusOr<SubmitResult>)> done,
                         const Submitter& by) {
  std::vector<pb::TaskSpec> one;
  one.push_back(std::move(spec));
  SubmitBatch(
      std::move(one), [done = std::move(done)](std::vector<absl::StatusOr<SubmitResult>> r) { done(std::move(r[0])); },
      by);
}

void Coordinator::SubmitBatch(std::vector<pb::TaskSpec> specs, SubmitBatchDone done, const Submitter& by) {
  if (specs.empty()) {
    done({});
    return;
  }
  auto answers = std::make_shared<BatchAnswers>(specs.size(), std::move(done));
  std::vector<absl::Status> invalid(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) invalid[i] = ValidateAndNormalize(&specs[i], options_.limits);
  std::vector<size_t> all(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) all[i] = i;
  BatchIds batch(specs.size());
  SubmitSome(specs, all, invalid, [answers](size_t i, absl::StatusOr<SubmitResult> r) { answers->Set(i, std::move(r)); },
             by, &batch, 0);
}

void Coordinator::SubmitSome(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                             const std::vector<absl::Status>& invalid, const Answer& answer_at, const Submitter& by,
                             BatchIds* batch, int round) {
  // Idempotency keys of finished tasks evicted from memory are in the store only, and so
  // are such dependencies (and a finished parent, for the refusal): look them up before
  // taking the lock. A key whose task was evicted after the lookup is looked up again
  // (keyed_evictions_ tells), and so is a dependency found in memory then but not now:
  // a key never gets a second task, a dependency is never taken for unknown.
  Lookups looked;
  looked.owner = by.owner;
  looked.keys.resize(specs.size());
  bool keyed = false, named = !by.parent_task_id.empty();
  for (size_t i : todo) {
    if (!invalid[i].ok()) continue;
    keyed = keyed || !specs[i].idempotency_key().empty();
    named = named || specs[i].after_size() > 0;
  }
  if (keyed || named) {
    std::vector<std::string> absent;
    {
      absl::MutexLock lock(&mu_);
      absent = NotInMemoryLocked(specs, todo, invalid, by, &looked);
    }
    for (const std::string& id : absent) looked.records[id] = store_->Get(id);
    for (size_t i : todo) {
      if (invalid[i].ok() && !specs[i].idempotency_key().empty()) {
        looked.keys[i] = store_->FindByIdempotencyKey(looked.owner, specs[i].idempotency_key(), by.parent_task_id);
      }
    }
  }
  std::vector<size_t> again;  // to look up again
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Recorded r = SubmitLocked(specs, todo, invalid, looked, answer_at, by, batch, &again, fx);
    if (r.ids.empty()) return 0;
    fx.after_commit.push_back([this, r = std::move(r), answer_at](absl::Status stored) {
      Accepted(r.ids, stored, [&](size_t k, absl::StatusOr<SubmitResult> res) { answer_at(r.slots[k], std::move(res)); });
    });
    return 0;
  });
  if (again.empty()) return;
  if (round >= 10) {  // finished tasks evicted faster than a lookup: should not happen
    for (size_t i : again) answer_at(i, absl::UnavailableError("submit: the coordinator is busy; retry"));
    return;
  }
  SubmitSome(specs, again, invalid, answer_at, by, batch, round + 1);
}

void Coordinator::Accepted(const std::vector<std::string>& ids, const absl::Status& stored,
                           const std::function<void(size_t, absl::StatusOr<SubmitResult>)>& answer) {
  std::vector<std::vector<std::function<void(absl::StatusOr<SubmitResult>)>>> waiting;
  std::vector<absl::StatusOr<SubmitResult>> results =
      Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return AcceptedLocked(ids, stored, &waiting, fx); });
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
  const bool in_memory =
      Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return CancelLocked(task_id, done, allow, by, fx); });
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

absl::StatusOr<uint64_t> Coordinator::Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink,
                                            const TaskAccess& allow) {
  return WatchAll({task_id}, std::move(sink), allow)[0];
}

std::vector<absl::StatusOr<uint64_t>> Coordinator::WatchAll(const std::vector<std::string>& task_ids,
                                                            std::shared_ptr<TaskSink> sink, const TaskAccess& allow) {
  std::vector<std::pair<size_t, uint64_t>> elsewhere;  // not in memory: (index, watch id)
  std::vector<absl::StatusOr<uint64_t>> out = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return WatchLocked(task_ids, sink, allow, &elsewhere, fx);
  });
  WatchStored(task_ids, sink, allow, elsewhere, &out);
  return out;
}

void Coordinator::Shutdown() {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ShutdownLocked(fx);
    return 0;
  });
}

absl::StatusOr<uint64_t> Coordinator::RegisterWorker(const pb::Register& reg, std::shared_ptr<WorkerLink> link,
                                                     bool draining) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return RegisterLocked(reg, std::move(link), draining, fx);
  });
}

void Coordinator::HandleWorkerMessage(const std::string& device_id, uint64_t epoch, const pb::WorkerMessage& msg) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    HandleMessageLocked(device_id, epoch, msg, fx);
    return 0;
  });
}

std::shared_ptr<Heard> Coordinator::HeardFor(const std::string& device_id, uint64_t epoch) {
  absl::MutexLock lock(&mu_);
  return HeardForLocked(device_id, epoch);
}

void Coordinator::WorkerDisconnected(const std::string& device_id, uint64_t epoch) {
  Mutate([&](Effects&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    DisconnectedLocked(device_id, epoch);
    return 0;
  });
}

absl::StatusOr<pb::Worker> Coordinator::DrainWorker(const std::string& device_id, bool drain) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return DrainLocked(device_id, drain, fx); });
}

void Coordinator::PayloadsUnread(std::vector<PayloadLoader::Unread> unread) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    UnsentLocked(unread, fx);
    return 0;
  });
}

void Coordinator::Tick() {
  const bool prune = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t now = clock_->NowMs();
    SweepLivenessLocked(now, fx);
    ReleaseRetriesLocked(now, fx);
    WriteLateAssignmentsLocked(now, fx);
    // Acknowledgements that found no message to ride along with go now.
    for (WorkerEntry* w : workers_.All()) {
      if (w->link != nullptr) fx.flushes.push_back(w->link);
    }
    return PruneDueLocked(now);
  });
  if (prune) PruneStored(clock_->NowMs());
}

StoredRecords Coordinator::ReadNamed(const std::vector<const pb::Task*>& tasks) const {
  StoredRecords named;
  for (std::string& id : NamedElsewhere(tasks)) {
    absl::StatusOr<std::optional<pb::Task>> record = store_->Get(id);
    named.emplace(std::move(id), std::move(record));
  }
  return named;
}

absl::Status Coordinator::RecoverFromStore() {
  absl::StatusOr<RecoveryData> data = store_->LoadForRecovery(options_.memory_payload_budget_bytes);
  if (!data.ok()) return data.status();
  std::vector<const pb::Task*> tasks;
  tasks.reserve(data->unfinished.size());
  for (const RecoveredTask& r : data->unfinished) tasks.push_back(&r.task);
  StoredRecords named = ReadNamed(tasks);
  for (const auto& [id, record] : named) {
    if (!record.ok()) return record.status();  // as LoadForRecovery's own errors
  }
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RecoverLocked(*data, named, fx);
    return 0;
  });
  return absl::OkStatus();
}

void Coordinator::Recover(std::vector<pb::Task> tasks) {
  std::vector<const pb::Task*> given;
  given.reserve(tasks.size());
  for (const pb::Task& t : tasks) given.push_back(&t);
  StoredRecords named = ReadNamed(given);
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RecoverTasksLocked(std::move(tasks), named, fx);
    return 0;
  });
}

namespace {
// Retention deletes at most this many records per tick, so that one Tick stays short.
constexpr size_t kPruneBatch = 10000;
}  // namespace

void Coordinator::PruneStored(int64_t now_ms) {
  const int64_t cutoff = now_ms - absl::ToInt64Milliseconds(options_.retention);
  absl::StatusOr<std::vector<FinishedRef>> old = store_->FinishedBefore(cutoff, kPruneBatch);
  std::vector<std::string> ids =
      Mutate([&](Effects&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return PruneLocked(old); });
  if (ids.empty()) return;
  spdlog::info("retention: pruning {} tasks finished more than {} ago", ids.size(),
               absl::FormatDuration(options_.retention));
  // Another prune waits for these deletes: until then the store would list them again.
  // Their answer comes back like a write's, through the completion queue, so it never
  // runs after the Coordinator is gone. Reserved outside delivery_mu_ (an inline store
  // answers within Delete, and the answer takes mu_): a write delivered meanwhile may
  // commit first and then waits the moment this delete takes.
  const uint64_t ticket = completions_.queue().Reserve();
  store_->Delete(std::move(ids), [queue = completions_.shared_queue(), ticket, this](absl::Status s) {
    queue->Complete(ticket, [this, s] {
      if (!s.ok()) spdlog::error("task store delete failed: {}", s.ToString());
      absl::MutexLock lock(&mu_);
      prune_in_flight_ = false;
    });
  });
  completions_.Delivered(ticket);
}

absl::StatusOr<TaskTokenHolder> Coordinator::CheckTaskToken(absl::string_view token) const {
  absl::StatusOr<ParsedTaskToken> parsed = ParseTaskToken(token);
  if (!parsed.ok()) return InvalidTaskToken();
  const std::string presented = TaskTokenSha256(token);  // hashed off the lock
  // An ASSIGNED or RUNNING task is always in memory: no store read.
  absl::MutexLock lock(&mu_);
  const TaskEntry* e = tasks_.Find(parsed->task_id);
  if (e == nullptr || !TaskTokenMatches(e->task, *parsed, presented)) return InvalidTaskToken();
  return HolderOf(e->task);
}

}  // namespace rc::coordinator
