#include "worker/executor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace rc::worker {

Executor::Executor(int slots, const HandlerRegistry* handlers, EventSink* sink, pb::Capabilities capabilities)
    : handlers_(handlers), sink_(sink), capabilities_(std::move(capabilities)) {
  absl::MutexLock lock(&join_mu_);
  for (int i = 0; i < slots; ++i) threads_.emplace_back([this] { SlotLoop(); });
}

Executor::~Executor() { Stop(); }

void Executor::Assign(const pb::Assignment& a) {
  const Handler* handler = handlers_->Find(a.task_type());
  std::shared_ptr<StopToken> token;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !held_.emplace(AttemptKey(a.task_id(), a.attempt()), HeldAttempt()).second) return;
    if (handler == nullptr || !handler->Instant()) {
      pending_.push_back(a);
      return;
    }
    token = StartLocked(a);
  }
  RunOne(a, token);
}

std::shared_ptr<StopToken> Executor::StartLocked(const pb::Assignment& a) {
  // The token exists from the moment the attempt leaves the queue, so a cancel
  // racing with the start always reaches it.
  HeldAttempt& h = held_[AttemptKey(a.task_id(), a.attempt())];
  h.token = std::make_shared<StopToken>(absl::Now() + absl::Seconds(a.timeout_seconds()));
  if (h.cancelled) h.token->Cancel();
  ++running_;
  return h.token;
}

void Executor::Cancel(const std::string& task_id, int attempt) {
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(AttemptKey(task_id, attempt));
    if (it == held_.end()) return;
    it->second.cancelled = true;
    if (it->second.token != nullptr) {
      it->second.token->Cancel();
      return;  // its slot thread reports CANCELLED as soon as the handler returns
    }
    // Still queued: drop it and report now.
    std::erase_if(pending_, [&](const pb::Assignment& a) { return a.task_id() == task_id && a.attempt() == attempt; });
    held_.erase(it);
  }
  pb::TaskFinished fin;
  fin.set_task_id(task_id);
  fin.set_attempt(attempt);
  fin.set_status(pb::TASK_STATUS_CANCELLED);
  fin.set_error_message("cancelled before it started");
  fin.set_finished_at_ms(absl::ToUnixMillis(absl::Now()));
  sink_->Finished(std::move(fin));
}

std::vector<pb::RunningAttempt> Executor::HeldAttempts() const {
  absl::MutexLock lock(&mu_);
  std::vector<pb::RunningAttempt> out;
  for (const auto& [key, h] : held_) {
    pb::RunningAttempt& r = out.emplace_back();
    r.set_task_id(key.first);
    r.set_attempt(key.second);
  }
  return out;
}

bool Executor::WaitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.empty(); };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

int Executor::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

void Executor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (const pb::Assignment& a : pending_) held_.erase(AttemptKey(a.task_id(), a.attempt()));
    pending_.clear();
    for (auto& [id, h] : held_) {
      if (h.token != nullptr) h.token->Cancel();
    }
  }
  absl::MutexLock lock(&join_mu_);  // Stop may race with itself (drain vs. a second signal)
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void Executor::SlotLoop() {
  while (true) {
    pb::Assignment a;
    std::shared_ptr<StopToken> token;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Executor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) { return e->stopping_ || !e->pending_.empty(); },
          this));
      if (stopping_) return;
      a = std::move(pending_.front());
      pending_.pop_front();
      token = StartLocked(a);
    }
    RunOne(a, token);
  }
}

void Executor::RunOne(const pb::Assignment& a, const std::shared_ptr<StopToken>& token) {
  const absl::Time start = absl::Now();
  pb::TaskFinished fin;
  fin.set_task_id(a.task_id());
  fin.set_attempt(a.attempt());
  fin.set_started_at_ms(absl::ToUnixMillis(start));

  if (!token->cancelled()) {
    pb::TaskStarted started;
    started.set_task_id(a.task_id());
    started.set_attempt(a.attempt());
    started.set_started_at_ms(fin.started_at_ms());
    sink_->Started(std::move(started));

    bool refused = false;
    absl::StatusOr<HandlerOutput> out = absl::NotFoundError(
        absl::StrCat("this worker does not run task type '", a.task_type(), "'"));
    const auto& accepted = capabilities_.accepted_submitters();
    if (!accepted.empty() && std::find(accepted.begin(), accepted.end(), a.owner()) == accepted.end()) {
      // The coordinator never places such a task here; this guards against one that does.
      out = absl::PermissionDeniedError(absl::StrCat("this worker runs only tasks of submitters ",
                                                     absl::StrJoin(accepted, ", "), ", not of '", a.owner(), "'"));
    } else if (Handler* handler = handlers_->Find(a.task_type())) {
      TaskContext ctx{a.task_id(), a.attempt(), a.payload(), token.get(), {&capabilities_, running()}, nullptr,
                      a.internet_required()};
      ctx.on_process_start = [this, &a](int pid) {
        pb::TaskProgress p;
        p.set_task_id(a.task_id());
        p.set_attempt(a.attempt());
        p.set_pid(pid);
        sink_->Progress(std::move(p));
      };
      out = handler->Run(ctx);
      // Only the handler's own refusal counts (handler.h): not out->failure (the task ran)
      // and not the guards above (another worker may serve the task).
      refused = !out.ok() && IsPermanentRefusal(out.status());
    }
    if (out.ok()) {
      fin.set_result(std::move(out->result));
      fin.set_stdout(std::move(out->stdout));
      fin.set_stderr(std::move(out->stderr));
      fin.set_exit_code(out->exit_code);
      *fin.mutable_usage() = out->usage;
      fin.mutable_usage()->set_pid(0);  // it has ended
      if (!out->failure.ok()) {
        absl::Status failure = out->failure;  // copied: assigning `out` destroys it
        out = std::move(failure);
      }
    }
    if (token->cancelled()) {
      fin.set_status(pb::TASK_STATUS_CANCELLED);
      fin.set_error_message("cancelled");
    } else if (!out.ok() && out.status().code() == absl::StatusCode::kDeadlineExceeded) {
      fin.set_status(pb::TASK_STATUS_TIMEOUT);  // the handler's own, shorter limit
      fin.set_error_message(std::string(out.status().message()));
    } else if (token->expired()) {
      fin.set_status(pb::TASK_STATUS_TIMEOUT);
      fin.set_error_message(absl::StrFormat("timed out after %gs", a.timeout_seconds()));
    } else if (out.ok()) {
      fin.set_status(pb::TASK_STATUS_SUCCESS);
    } else {
      fin.set_status(pb::TASK_STATUS_FAILED);
      fin.set_error_message(std::string(out.status().message()));
      fin.set_permanent(refused);
    }
  } else {
    fin.set_status(pb::TASK_STATUS_CANCELLED);
    fin.set_error_message("cancelled before it started");
  }
  const absl::Time end = absl::Now();
  fin.set_finished_at_ms(absl::ToUnixMillis(end));
  fin.set_execution_time_seconds(absl::ToDoubleSeconds(end - start));
  finished_[fin.status()].fetch_add(1);
  run_time_.Observe(fin.execution_time_seconds());
  bool report;
  {
    absl::MutexLock lock(&mu_);
    report = !stopping_;  // on shutdown the coordinator requeues what we drop
  }
  // Into the outbox before it leaves held_, so that a register in between lists it in
  // one or the other (never neither, which would requeue a finished attempt).
  if (report) sink_->Finished(std::move(fin));
  absl::MutexLock lock(&mu_);
  held_.erase(AttemptKey(a.task_id(), a.attempt()));
  --running_;
}

}  // namespace rc::worker
