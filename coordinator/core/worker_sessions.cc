#include "coordinator/core/worker_sessions.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_set.h"
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

TaskEntry* WorkerSessions::CurrentLocked(const WorkerEntry& w, const std::string& task_id, int32_t attempt) {
  TaskEntry* e = tasks_.Find(task_id);
  return e != nullptr && IsCurrentAttempt(e->task, w.caps.device_id(), attempt) ? e : nullptr;
}

absl::StatusOr<uint64_t> WorkerSessions::RegisterLocked(const pb::Register& reg, std::shared_ptr<WorkerLink> link,
                                                        bool draining, Effects& fx) {
  if (absl::Status s = ValidateCapabilities(reg.capabilities()); !s.ok()) return s;
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
  pb::Registered* registered = fx.MessageFor(w->link).mutable_registered();
  registered->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  registered->set_max_task_depth(options_.max_task_depth);
  registered->set_http_port(callback_http_port_);
  registered->set_http_tls(callback_http_tls_);
  ReconcileLocked(w, reg, fx);
  SetWaitingLocked(w, reg.waiting());
  spdlog::info("worker {} online: {} slots, types [{}], tags [{}]", device, w->caps.slots(),
               absl::StrJoin(w->caps.task_types(), ","), absl::StrJoin(w->caps.tags(), ","));
  RefreshReasonsLocked();
  DispatchLocked(fx);
  return w->epoch;
}

void WorkerSessions::ReconcileLocked(WorkerEntry* w, const pb::Register& reg, Effects& fx) {
  const std::string& device = w->caps.device_id();
  absl::flat_hash_set<std::pair<std::string, int32_t>> reported;
  for (const pb::RunningAttempt& r : reg.running()) reported.emplace(r.task_id(), r.attempt());

  // Attempts we placed there that the worker no longer has: lost with its old process.
  std::vector<std::pair<std::string, int32_t>> ours(w->running.begin(), w->running.end());
  for (const auto& [id, attempt] : ours) {
    if (reported.contains({id, attempt})) continue;
    TaskEntry* e = CurrentLocked(*w, id, attempt);
    if (e != nullptr && e->placed != nullptr) continue;  // not sent yet: this connection gets it once stored
    w->Forget({id, attempt});
    if (e != nullptr) {
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
      if (e->task.status() == pb::TASK_STATUS_QUEUED) {
        queue_.Remove(e->cls, e->key);  // no-op while in retry backoff; that entry goes stale
        if (lifecycle_.Adopt(e, device, attempt, clock_->NowMs()).ok()) ChangedLocked(e, fx);
      }
    }
    if (CurrentLocked(*w, id, attempt) != nullptr) continue;
    pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
    c->set_task_id(id);
    c->set_attempt(attempt);
  }
}

std::shared_ptr<Heard> WorkerSessions::HeardForLocked(const std::string& device_id, uint64_t epoch) {
  WorkerEntry* w = workers_.Find(device_id);
  return w != nullptr && w->epoch == epoch ? w->heard : nullptr;
}

void WorkerSessions::HandleMessageLocked(const std::string& device_id, uint64_t epoch, const pb::WorkerMessage& msg,
                                         Effects& fx) {
  WorkerEntry* w = workers_.Find(device_id);
  if (w == nullptr || w->epoch != epoch || w->link == nullptr) return;  // a replaced or closed connection: fenced off
  w->last_heartbeat_ms = clock_->NowMs();  // any message proves liveness
  if (msg.has_heartbeat()) w->load_average = msg.heartbeat().load_average();
  for (const pb::TaskStarted& s : msg.started()) StartedLocked(w, s, fx);
  for (const pb::TaskProgress& p : msg.progress()) ProgressLocked(w, p, fx);
  const bool lent = msg.has_waiting() && SetWaitingLocked(w, msg.waiting().attempts());
  if (msg.finished_size() > 0) {
    // Acknowledged only once each result is stored: the worker forgets it then (and
    // until then sends it again on every new connection). Waiters may have it already.
    std::vector<std::pair<pb::RunningAttempt, uint64_t>> owed;  // (attempt, the write storing it)
    for (const pb::TaskFinished& f : msg.finished()) {
      const uint64_t op = FinishLocked(w, f, fx);
      pb::RunningAttempt a;
      a.set_task_id(f.task_id());
      a.set_attempt(f.attempt());
      owed.emplace_back(std::move(a), op);
    }
    // Runs after this operation's commit and every earlier one: a result stored by an
    // earlier write is acknowledged only if that write did not fail.
    fx.worker_acks.push_back([this, link = w->link, owed = std::move(owed)](absl::Status stored) {
      if (!stored.ok()) return;
      pb::CoordinatorMessage acks;
      for (const auto& [a, op] : owed) {
        if (op == 0 || !WriteFailed(op)) *acks.add_finished_acks() = a;
      }
      if (acks.finished_acks_size() > 0) link->SendLater(std::move(acks));  // rides along with the next message
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
  if (msg.finished_size() > 0 || msg.deregister() || lent) DispatchLocked(fx);
}

bool WorkerSessions::SetWaitingLocked(WorkerEntry* w,
                                      const google::protobuf::RepeatedPtrField<pb::RunningAttempt>& attempts) {
  absl::flat_hash_map<std::pair<std::string, int32_t>, int32_t> waiting;
  for (const pb::RunningAttempt& a : attempts) {
    std::pair<std::string, int32_t> attempt(a.task_id(), a.attempt());
    if (!w->running.contains(attempt)) continue;  // not ours there (or already ended): lends nothing
    // Its depth decides which tasks may use the lent slot; a task no longer known (its
    // attempt being stopped) lends nothing rather than a slot of unknown depth.
    const TaskEntry* e = tasks_.Find(a.task_id());
    if (e == nullptr) continue;
    waiting.emplace(std::move(attempt), e->task.depth());
  }
  if (waiting == w->waiting) return false;
  w->waiting = std::move(waiting);
  return true;
}

void WorkerSessions::StartedLocked(WorkerEntry* w, const pb::TaskStarted& s, Effects& fx) {
  TaskEntry* e = CurrentLocked(*w, s.task_id(), s.attempt());
  // Started twice (or after it ended): nothing to record.
  if (e == nullptr || !Applies(e->task.status(), TaskEvent::kStart)) return;
  // Not written: recovery treats ASSIGNED and RUNNING alike (the attempt is held for its
  // worker to report), so the record written at assignment stands until the attempt ends,
  // and a task costs one store write less (issue 18). After a coordinator restart a
  // running task shows ASSIGNED, without its start time, until its worker reports it.
  if (lifecycle_.Start(e, clock_->NowMs()).ok()) ChangedLocked(e, fx, /*write=*/false);
}

void WorkerSessions::ProgressLocked(WorkerEntry* w, const pb::TaskProgress& p, Effects& fx) {
  // Only the current attempt while it runs: a sample trailing its attempt's end (or of a
  // stale attempt) must not overwrite what the final report said.
  TaskEntry* e = CurrentLocked(*w, p.task_id(), p.attempt());
  if (e == nullptr) return;
  pb::ResourceUsage* u = e->task.mutable_resource_usage();
  if (!p.has_usage()) {  // a new process: its pid is written (once per process, not per sample)
    u->set_pid(p.pid());
    ChangedLocked(e, fx);
    return;
  }
  *u = p.usage();
  if (u->pid() == 0) u->set_pid(p.pid());
  SampledLocked(e, fx);
}

void WorkerSessions::SampledLocked(TaskEntry* e, Effects& fx) {
  e->task.set_revision(e->task.revision() + 1);  // watchers drop snapshots older than the newest seen
  if (e->watchers.empty()) return;
  std::optional<pb::Task> snapshot;
  for (auto& [id, sink] : e->watchers) {
    if (sink->TerminalOnly()) continue;
    if (!snapshot.has_value()) snapshot = SnapshotLocked(*e);
    NotifyLocked(*e, sink, *snapshot, fx);
  }
}

uint64_t WorkerSessions::FinishLocked(WorkerEntry* w, const pb::TaskFinished& f, Effects& fx) {
  w->Forget({f.task_id(), f.attempt()});
  TaskEntry* e = CurrentLocked(*w, f.task_id(), f.attempt());
  if (e == nullptr) {
    // Stale attempt, requeued, or already ended (e.g. cancelled): recorded at most once.
    // The same report sent again (a reconnect before its acknowledgement) is stored
    // by the task's last write; if that one failed, by this operation's.
    TaskEntry* ended = tasks_.Find(f.task_id());
    if (ended == nullptr || !IsTerminal(ended->task.status()) || ended->task.attempts() != f.attempt() ||
        ended->task.worker_device_id() != w->caps.device_id()) {
      return 0;
    }
    if (WriteFailed(ended->written_in) && ended->written_in != operation_) {
      ended->written_in = operation_;
      fx.changed.push_back(ended->task.task_id());
    }
    return ended->written_in;
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
  (void)lifecycle_.NoteRunTime(e, static_cast<int64_t>(f.execution_time_seconds() * 1000), now);  // current: allowed
  // A permanent failure (the handler refused the payload; worker_service.proto) ends
  // the task below with the worker's message: retrying would only be refused again.
  if (!IsTerminal(f.status()) || (f.status() == pb::TASK_STATUS_FAILED && !f.permanent())) {
    // Handler failures retry (after a backoff) until the attempts are used up.
    std::string why = IsTerminal(f.status())
                          ? (f.error_message().empty() ? std::string("handler failed") : f.error_message())
                          : absl::StrCat("worker reported a non-terminal status ", static_cast<int>(f.status()));
    RetryOrFailLocked(e, why, fx);
    if (!IsTerminal(t.status())) t.clear_signature();  // requeued: no longer its outcome
    return e->written_in;
  }
  if (lifecycle_.Finish(e, f.status(), f.error_message(), now).ok()) ChangedLocked(e, fx);
  return e->written_in;
}

void WorkerSessions::DisconnectedLocked(const std::string& device_id, uint64_t epoch) {
  WorkerEntry* w = workers_.Find(device_id);
  if (w == nullptr || w->epoch != epoch || w->link == nullptr) return;
  w->link = nullptr;
  w->status = pb::WORKER_STATUS_OFFLINE;
  w->disconnected_at_ms = clock_->NowMs();
  spdlog::info("worker {} disconnected ({} attempts held for {}s grace)", device_id, w->running.size(),
               absl::ToDoubleSeconds(options_.reconnect_grace));
  RefreshReasonsLocked();
}

void WorkerSessions::HandBackLocked(WorkerEntry* w, Effects& fx) {
  const std::string why = absl::StrCat("handed back: worker ", w->caps.device_id(), " shut down before it finished");
  const int64_t now = clock_->NowMs();
  for (const auto& [id, attempt] : w->running) {
    TaskEntry* e = CurrentLocked(*w, id, attempt);
    if (e == nullptr || !lifecycle_.HandBack(e, why, now).ok()) continue;
    EnqueueLocked(e);
    ChangedLocked(e, fx);
  }
  w->ForgetAll();
}

void WorkerSessions::LoseWorkerTasksLocked(WorkerEntry* w, const std::string& why, Effects& fx) {
  for (const auto& [id, attempt] : w->running) {
    if (TaskEntry* e = CurrentLocked(*w, id, attempt)) RetryOrFailLocked(e, why, fx);
  }
  w->ForgetAll();
}

void WorkerSessions::SweepLivenessLocked(int64_t now, Effects& fx) {
  bool changed = false;
  for (WorkerEntry* worker : workers_.All()) {
    WorkerEntry& w = *worker;
    const std::string& device = w.caps.device_id();
    switch (CheckLiveness(w, now, options_.offline_after, options_.reconnect_grace)) {
      case Liveness::kFine:
        continue;
      case Liveness::kSilent: {
        std::string why =
            absl::StrFormat("worker %s sent no heartbeat for %.1fs", device, (now - LastHeardMs(w)) / 1000.0);
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
}

absl::StatusOr<pb::Worker> WorkerSessions::DrainLocked(const std::string& device_id, bool drain, Effects& fx) {
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
}

void WorkerSessions::UnsentLocked(const std::vector<PayloadLoader::Unread>& unread, Effects& fx) {
  for (const PayloadLoader::Unread& u : unread) {
    spdlog::error("task {} attempt {} was not sent: {}", u.task_id, u.attempt, u.why);
    TaskEntry* e = tasks_.Find(u.task_id);
    // Only an attempt never started can have been unsent.
    if (e == nullptr || e->task.attempts() != u.attempt || e->task.status() != pb::TASK_STATUS_ASSIGNED) continue;
    if (WorkerEntry* w = workers_.Find(e->task.worker_device_id())) w->Forget({u.task_id, u.attempt});
    RetryOrFailLocked(e, absl::StrCat("not sent to worker ", e->task.worker_device_id(), ": ", u.why), fx);
  }
  DispatchLocked(fx);
}

}  // namespace rc::coordinator
