#include "worker/execution/executor.h"

#include "spdlog/spdlog.h"

namespace rc::worker {

Executor::Executor(int slots, const HandlerRegistry* handlers, EventSink* sink, pb::Capabilities capabilities,
                   const Clock* clock)
    : handlers_(handlers),
      sink_(sink),
      capabilities_(std::move(capabilities)),
      clock_(clock),
      chain_(MakeAttemptChain(std::make_unique<HandlerDispatch>(handlers), &capabilities_, clock, &metrics_)) {
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
  h.token = std::make_shared<StopToken>(clock_->Now() + absl::Seconds(a.timeout_seconds()), clock_);
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
  fin.set_finished_at_ms(clock_->NowMs());
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
  return clock_->AwaitWithDeadline(&mu_, absl::Condition(&idle), deadline);
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
  const Attempt attempt{&a, token.get(), WorkerSnapshot{&capabilities_, running()}, sink_};
  pb::TaskFinished fin = std::move(chain_->Execute(attempt).finished);
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
