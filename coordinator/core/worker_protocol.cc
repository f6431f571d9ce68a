// Coordinator: the worker protocol (register, heartbeats, task events, liveness).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

absl::Status ValidateCapabilities(const pb::Capabilities& c) {
  if (c.device_id().empty()) return absl::InvalidArgumentError("capabilities.device_id: must not be empty");
  if (c.device_id().size() > 128) return absl::InvalidArgumentError("capabilities.device_id: longer than 128");
  if (c.slots() < 1) return absl::InvalidArgumentError("capabilities.slots: must be at least 1");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> Coordinator::RegisterWorker(const pb::Register& reg, std::shared_ptr<WorkerLink> link,
                                                     bool draining) {
  if (absl::Status s = ValidateCapabilities(reg.capabilities()); !s.ok()) return s;
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<uint64_t> {
    if (shut_down_) return absl::UnavailableError("coordinator is shutting down");
    const std::string& device = reg.capabilities().device_id();
    WorkerEntry* w = workers_.FindOrAdd(device);
    if (w->link != nullptr) {
      spdlog::warn("worker {} connected again; closing its previous connection", device);
      fx.closes.emplace_back(std::move(w->link),
                             absl::AbortedError(absl::StrCat("replaced by a newer connection of device ", device)));
    }
    const int64_t now = clock_->NowMs();
    w->caps = reg.capabilities();
    w->epoch = next_epoch_++;
    w->link = std::move(link);
    w->status = draining ? pb::WORKER_STATUS_DRAINING : pb::WORKER_STATUS_ONLINE;
    w->last_heartbeat_ms = now;
    w->heard = std::make_shared<Heard>();
    w->connected_at_ms = now;
    fx.MessageFor(w->link).mutable_registered()->set_heartbeat_interval_ms(
        absl::ToInt64Milliseconds(options_.heartbeat_interval));
    ReconcileLocked(w, reg, fx);
    spdlog::info("worker {} online: {} slots, types [{}], tags [{}]", device, w->caps.slots(),
                 absl::StrJoin(w->caps.task_types(), ","), absl::StrJoin(w->caps.tags(), ","));
    RefreshReasonsLocked();
    DispatchLocked(fx);
    return w->epoch;
  });
}

void Coordinator::ReconcileLocked(WorkerEntry* w, const pb::Register& reg, Effects& fx) {
  const std::string& device = w->caps.device_id();
  absl::flat_hash_set<std::pair<std::string, int32_t>> reported;
  for (const pb::RunningAttempt& r : reg.running()) reported.emplace(r.task_id(), r.attempt());

  // Attempts we placed there that the worker no longer has: lost with its old process.
  std::vector<std::pair<std::string, int32_t>> ours(w->running.begin(), w->running.end());
  for (const auto& [id, attempt] : ours) {
    if (reported.contains({id, attempt})) continue;
    w->running.erase({id, attempt});
    TaskEntry* e = tasks_.Find(id);
    if (e != nullptr && !IsTerminal(e->task.status()) && e->task.attempts() == attempt &&
        e->task.worker_device_id() == device) {
      RetryOrFailLocked(e, absl::StrCat("worker ", device, " restarted without this attempt"), fx);
    }
  }
  // Attempts the worker runs: keep the ones we own; stop the rest, keeping their slots
  // reserved until the worker confirms they ended.
  for (const auto& [id, attempt] : reported) {
    w->running.emplace(id, attempt);
    TaskEntry* e = tasks_.Find(id);
    if (e != nullptr && attempt > e->task.attempts()) {
      // Assigned just before a coordinator crash, stored only as queued: adopt it.
      e->highest_attempt_seen = std::max(e->highest_attempt_seen, attempt);
      if (e->task.status() == pb::TASK_STATUS_QUEUED) AdoptLocked(e, w, attempt, fx);
    }
    bool owned = e != nullptr && !IsTerminal(e->task.status()) && e->task.attempts() == attempt &&
                 e->task.worker_device_id() == device &&
                 (e->task.status() == pb::TASK_STATUS_ASSIGNED || e->task.status() == pb::TASK_STATUS_RUNNING);
    if (owned) continue;
    pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
    c->set_task_id(id);
    c->set_attempt(attempt);
  }
}

void Coordinator::AdoptLocked(TaskEntry* e, WorkerEntry* w, int32_t attempt, Effects& fx) {
  pb::Task& t = e->task;
  queue_.Remove(e->cls, e->key);  // no-op while in retry backoff; that entry goes stale
  t.set_next_attempt_at_ms(0);
  t.set_attempts(attempt);
  t.set_worker_device_id(w->caps.device_id());
  pb::Attempt* a = t.add_attempt_history();
  a->set_number(attempt);
  a->set_worker_device_id(w->caps.device_id());
  a->set_assigned_at_ms(clock_->NowMs());
  a->set_status(pb::TASK_STATUS_ASSIGNED);
  tasks_.SetStatus(e, pb::TASK_STATUS_ASSIGNED);
  ChangedLocked(e, fx);
}

std::shared_ptr<Heard> Coordinator::HeardFor(const std::string& device_id, uint64_t epoch) {
  absl::MutexLock lock(&mu_);
  WorkerEntry* w = workers_.Find(device_id);
  return w != nullptr && w->epoch == epoch ? w->heard : nullptr;
}

void Coordinator::HandleWorkerMessage(const std::string& device_id, uint64_t epoch, const pb::WorkerMessage& msg) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    WorkerEntry* w = workers_.Find(device_id);
    if (w == nullptr || w->epoch != epoch || w->link == nullptr) {
      return 0;  // a replaced or closed connection: fenced off
    }
    w->last_heartbeat_ms = clock_->NowMs();  // any message proves liveness
    if (msg.has_heartbeat()) w->load_average = msg.heartbeat().load_average();
    for (const pb::TaskStarted& s : msg.started()) StartedLocked(w, s, fx);
    for (const pb::TaskProgress& p : msg.progress()) {
      TaskEntry* e = tasks_.Find(p.task_id());
      if (e == nullptr || e->task.attempts() != p.attempt() || e->task.worker_device_id() != device_id ||
          IsTerminal(e->task.status())) {
        continue;
      }
      e->task.mutable_resource_usage()->set_pid(p.pid());
      ChangedLocked(e, fx);
    }
    if (msg.finished_size() > 0) {
      // Acknowledge only once the results are stored: the worker forgets them then.
      pb::CoordinatorMessage acks;
      for (const pb::TaskFinished& f : msg.finished()) {
        FinishLocked(w, f, fx);
        pb::RunningAttempt* ack = acks.add_finished_acks();
        ack->set_task_id(f.task_id());
        ack->set_attempt(f.attempt());
      }
      fx.after_commit.push_back([link = w->link, acks = std::move(acks)](absl::Status stored) {
        if (stored.ok()) link->Send(acks);
      });
    }
    if (msg.draining() && w->status == pb::WORKER_STATUS_ONLINE) {
      spdlog::info("worker {} is draining ({} attempts running)", device_id, w->running.size());
      w->status = pb::WORKER_STATUS_DRAINING;
      RefreshReasonsLocked();
    }
    if (msg.deregister()) {
      spdlog::info("worker {} left; {} unfinished attempts go back to the queue", device_id, w->running.size());
      w->status = pb::WORKER_STATUS_OFFLINE;
      w->disconnected_at_ms = clock_->NowMs();
      HandBackLocked(w, fx);
      fx.closes.emplace_back(std::move(w->link), absl::OkStatus());
      w->link = nullptr;
      RefreshReasonsLocked();
    }
    if (msg.finished_size() > 0 || msg.deregister()) DispatchLocked(fx);
    return 0;
  });
}

void Coordinator::StartedLocked(WorkerEntry* w, const pb::TaskStarted& s, Effects& fx) {
  TaskEntry* e = tasks_.Find(s.task_id());
  if (e == nullptr || e->task.attempts() != s.attempt() || e->task.worker_device_id() != w->caps.device_id() ||
      e->task.status() != pb::TASK_STATUS_ASSIGNED) {
    return;
  }
  const int64_t now = clock_->NowMs();
  tasks_.SetStatus(e, pb::TASK_STATUS_RUNNING);
  e->task.set_started_at_ms(now);
  pb::Attempt* a = e->task.mutable_attempt_history(e->task.attempt_history_size() - 1);
  a->set_started_at_ms(now);
  a->set_status(pb::TASK_STATUS_RUNNING);
  ChangedLocked(e, fx);
}

void Coordinator::ReleaseAttemptLocked(WorkerEntry* w, const std::string& task_id, int32_t attempt) {
  w->running.erase({task_id, attempt});
}

void Coordinator::FinishLocked(WorkerEntry* w, const pb::TaskFinished& f, Effects& fx) {
  ReleaseAttemptLocked(w, f.task_id(), f.attempt());
  TaskEntry* e = tasks_.Find(f.task_id());
  if (e == nullptr || e->task.attempts() != f.attempt() || e->task.worker_device_id() != w->caps.device_id() ||
      (e->task.status() != pb::TASK_STATUS_ASSIGNED && e->task.status() != pb::TASK_STATUS_RUNNING)) {
    return;  // stale attempt, requeued, or already ended (e.g. cancelled): recorded at most once
  }
  pb::Task& t = e->task;
  const int64_t now = clock_->NowMs();
  t.set_result(f.result());
  t.set_stdout(f.stdout());
  t.set_stderr(f.stderr());
  t.set_exit_code(f.exit_code());
  t.set_execution_time_seconds(f.execution_time_seconds());
  *t.mutable_resource_usage() = f.usage();
  // The worker's signature over this outcome, with the key this connection registered
  // (never a key the message names); `retire-cluster verify` checks it. Not verified
  // here: that would cost ~50 us per result under the coordinator's lock.
  if (f.has_signature()) {
    *t.mutable_signature() = f.signature();
    t.mutable_signature()->set_public_key(w->caps.public_key());
  } else {
    t.clear_signature();
  }
  if (t.started_at_ms() == 0) {
    t.set_started_at_ms(now - static_cast<int64_t>(f.execution_time_seconds() * 1000));
  }
  pb::Attempt* a = t.mutable_attempt_history(t.attempt_history_size() - 1);
  if (a->started_at_ms() == 0) a->set_started_at_ms(t.started_at_ms());
  // A permanent failure (the handler refused the payload; worker_service.proto) ends
  // the task below with the worker's message: retrying would only be refused again.
  if (!IsTerminal(f.status()) || (f.status() == pb::TASK_STATUS_FAILED && !f.permanent())) {
    // Handler failures retry (after a backoff) until the attempts are used up.
    std::string why = IsTerminal(f.status())
                          ? (f.error_message().empty() ? std::string("handler failed") : f.error_message())
                          : absl::StrCat("worker reported a non-terminal status ", static_cast<int>(f.status()));
    RetryOrFailLocked(e, why, fx);
    if (!IsTerminal(t.status())) t.clear_signature();  // requeued: no longer its outcome
    return;
  }
  tasks_.SetStatus(e, f.status());
  t.set_error_message(f.error_message());
  t.set_finished_at_ms(now);
  a->set_finished_at_ms(now);
  a->set_status(f.status());
  a->set_error_message(t.error_message());
  ChangedLocked(e, fx);
}

void Coordinator::WorkerDisconnected(const std::string& device_id, uint64_t epoch) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    WorkerEntry* w = workers_.Find(device_id);
    if (w == nullptr || w->epoch != epoch || w->link == nullptr) return 0;
    w->link = nullptr;
    w->status = pb::WORKER_STATUS_OFFLINE;
    w->disconnected_at_ms = clock_->NowMs();
    spdlog::info("worker {} disconnected ({} attempts held for {}s grace)", device_id, w->running.size(),
                 absl::ToDoubleSeconds(options_.reconnect_grace));
    RefreshReasonsLocked();
    return 0;
  });
}

void Coordinator::HandBackLocked(WorkerEntry* w, Effects& fx) {
  const std::string& device = w->caps.device_id();
  const int64_t now = clock_->NowMs();
  for (const auto& [id, attempt] : w->running) {
    TaskEntry* e = tasks_.Find(id);
    if (e == nullptr || IsTerminal(e->task.status()) || e->task.attempts() != attempt ||
        e->task.worker_device_id() != device) {
      continue;
    }
    pb::Task& t = e->task;
    pb::Attempt* a = t.mutable_attempt_history(t.attempt_history_size() - 1);
    a->set_status(pb::TASK_STATUS_CANCELLED);
    a->set_error_message(absl::StrCat("handed back: worker ", device, " shut down before it finished"));
    a->set_finished_at_ms(now);
    t.set_handed_back(t.handed_back() + 1);
    tasks_.SetStatus(e, pb::TASK_STATUS_QUEUED);
    t.set_started_at_ms(0);
    t.clear_worker_device_id();
    EnqueueLocked(e);
    ChangedLocked(e, fx);
  }
  w->running.clear();
}

void Coordinator::LoseWorkerTasksLocked(WorkerEntry* w, const std::string& why, Effects& fx) {
  const std::string& device = w->caps.device_id();
  for (const auto& [id, attempt] : w->running) {
    TaskEntry* e = tasks_.Find(id);
    if (e != nullptr && !IsTerminal(e->task.status()) && e->task.attempts() == attempt &&
        e->task.worker_device_id() == device) {
      RetryOrFailLocked(e, why, fx);
    }
  }
  w->running.clear();
}

void Coordinator::Tick() {
  const bool prune = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t now = clock_->NowMs();
    bool changed = false;
    for (WorkerEntry* worker : workers_.All()) {
      WorkerEntry& w = *worker;
      const std::string& device = w.caps.device_id();
      switch (CheckLiveness(w, now, options_.offline_after, options_.reconnect_grace)) {
        case Liveness::kFine:
          continue;
        case Liveness::kSilent: {
          std::string why = absl::StrFormat("worker %s sent no heartbeat for %.1fs", device,
                                            (now - LastHeardMs(w)) / 1000.0);
          spdlog::warn("{}; marking it offline", why);
          fx.closes.emplace_back(std::move(w.link), absl::UnavailableError(why));
          w.link = nullptr;
          w.status = pb::WORKER_STATUS_OFFLINE;
          w.disconnected_at_ms = now;
          LoseWorkerTasksLocked(&w, why, fx);
          break;
        }
        case Liveness::kGraceExpired:
          LoseWorkerTasksLocked(&w,
                                absl::StrFormat("worker %s disconnected and did not return within %.1fs", device,
                                                absl::ToDoubleSeconds(options_.reconnect_grace)),
                                fx);
          break;
      }
      changed = true;
    }
    if (changed) {
      RefreshReasonsLocked();
      DispatchLocked(fx);
    }
    ReleaseRetriesLocked(now, fx);
    if (now - last_prune_ms_ < 60'000 || prune_in_flight_) return false;
    last_prune_ms_ = now;
    prune_in_flight_ = true;
    return true;
  });
  if (prune) PruneStored(clock_->NowMs());
}

std::map<std::string, std::map<std::string, int64_t>> Coordinator::CountsByType() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const auto& [type, counts] : tasks_.counts_by_type()) {
    for (int st = pb::TASK_STATUS_PENDING; st <= pb::TASK_STATUS_TIMEOUT; ++st) {
      if (counts[st] != 0) out[type][std::string(StatusName(static_cast<pb::TaskStatus>(st)))] = counts[st];
    }
  }
  return out;
}

std::vector<pb::Worker> Coordinator::ListWorkers(const std::string& device_id) const {
  absl::MutexLock lock(&mu_);
  return workers_.List(device_id);
}

absl::StatusOr<pb::Worker> Coordinator::DrainWorker(const std::string& device_id, bool drain) {
  return Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<pb::Worker> {
    WorkerEntry* w = workers_.Find(device_id);
    if (w == nullptr) return absl::NotFoundError(absl::StrCat("no worker with device id '", device_id, "'"));
    if (w->drained != drain) {
      w->drained = drain;
      spdlog::info("worker {} {} by an admin", device_id, drain ? "drained" : "undrained");
      RefreshReasonsLocked();
      if (!drain) DispatchLocked(fx);
    }
    std::vector<pb::Worker> listed = workers_.List(device_id);
    return listed.front();
  });
}

pb::Stats Coordinator::Stats() const {
  absl::MutexLock lock(&mu_);
  pb::Stats s;
  workers_.AddStats(&s);
  for (int st = pb::TASK_STATUS_PENDING; st <= pb::TASK_STATUS_TIMEOUT; ++st) {
    auto status = static_cast<pb::TaskStatus>(st);
    (*s.mutable_tasks())[std::string(StatusName(status))] = tasks_.count(status);
  }
  for (int p = pb::PRIORITY_LOW; p <= pb::PRIORITY_URGENT; ++p) {
    (*s.mutable_queued_by_priority())[std::string(PriorityName(static_cast<pb::Priority>(p)))] =
        queue_.count_by_priority(p);
  }
  s.set_tasks_scheduled(tasks_scheduled_);
  s.set_tasks_succeeded(tasks_.count(pb::TASK_STATUS_SUCCESS));
  s.set_tasks_failed(tasks_.count(pb::TASK_STATUS_FAILED));
  s.set_uptime_seconds((clock_->NowMs() - started_at_ms_) / 1000.0);
  return s;
}

}  // namespace rc::coordinator
