#include "worker/execution/executor.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

// The handler, with its processes sampled while it runs (usage_sampler.h).
std::unique_ptr<AttemptExecutor> SampledLeaf(UsageSampler* sampler, std::unique_ptr<AttemptExecutor> leaf) {
  return std::make_unique<UsageSampling>(sampler, std::move(leaf));
}

}  // namespace

bool CanStart(int running, int waiting, int slots, int max_task_depth) {
  if (running - waiting >= slots) return false;
  // Below `slots` no slot is lent; past it, each further attempt runs in a waiting one's.
  return running < slots || waiting <= slots * max_task_depth;
}

Executor::Executor(int slots, const HandlerRegistry* handlers, EventSink* sink, pb::Capabilities capabilities,
                   const Clock* clock, TaskSockets* sockets)
    : slots_(slots),
      handlers_(handlers),
      sink_(sink),
      capabilities_(std::move(capabilities)),
      clock_(clock),
      sampler_(sink, clock),
      chain_(MakeAttemptChain(SampledLeaf(&sampler_, std::make_unique<HandlerDispatch>(handlers, sockets)),
                              &capabilities_, clock, &metrics_)) {}

Executor::~Executor() { Stop(); }

void Executor::Assign(const pb::Assignment& a) {
  const Handler* handler = handlers_->Find(a.task_type());
  std::shared_ptr<StopToken> token;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !held_.emplace(AttemptKey(a.task_id(), a.attempt()), HeldAttempt()).second) return;
    if (handler == nullptr || !handler->Instant()) {
      pending_.push_back(a);
      StartQueuedLocked();
      return;
    }
    token = StartLocked(a);
  }
  RunOne(a, token, /*then_idle=*/false);
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

void Executor::StartQueuedLocked() {
  while (!stopping_ && !pending_.empty() && CanStart(running_, waiting_, slots_, max_task_depth_)) {
    pb::Assignment a = std::move(pending_.front());
    pending_.pop_front();
    std::shared_ptr<StopToken> token = StartLocked(a);
    ready_.push_back(Started{std::move(a), std::move(token)});
  }
  // Every idle thread takes one; a thread more for each started attempt beyond them.
  // Threads stay (idle) once made, so there are never more than the most attempts
  // ever started at once.
  for (int missing = static_cast<int>(ready_.size()) - idle_threads_; missing > 0; --missing) {
    threads_.emplace_back([this] { SlotLoop(); });
    ++idle_threads_;  // counted idle from now: it takes from ready_ as soon as it runs
  }
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

void Executor::SetWaiting(const std::string& task_id, int attempt, bool waiting) {
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(AttemptKey(task_id, attempt));
    if (it == held_.end() || it->second.token == nullptr || it->second.waiting == waiting) return;
    it->second.waiting = waiting;
    waiting_ += waiting ? 1 : -1;
    StartQueuedLocked();
  }
  ReportWaiting();
}

void Executor::SetMaxTaskDepth(int depth) {
  absl::MutexLock lock(&mu_);
  max_task_depth_ = std::max(depth, 0);
  StartQueuedLocked();
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

std::vector<pb::RunningAttempt> Executor::WaitingLocked() const {
  std::vector<pb::RunningAttempt> out;
  for (const auto& [key, h] : held_) {
    if (!h.waiting) continue;
    pb::RunningAttempt& r = out.emplace_back();
    r.set_task_id(key.first);
    r.set_attempt(key.second);
  }
  return out;
}

std::vector<pb::RunningAttempt> Executor::WaitingAttempts() const {
  absl::MutexLock lock(&mu_);
  return WaitingLocked();
}

void Executor::ReportWaiting() {
  // report_mu_ orders the reports: each carries the set as it is when sent.
  absl::MutexLock report(&report_mu_);
  pb::WaitingAttempts set;
  {
    absl::MutexLock lock(&mu_);
    for (pb::RunningAttempt& r : WaitingLocked()) *set.add_attempts() = std::move(r);
  }
  sink_->Waiting(std::move(set));
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

int Executor::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

int Executor::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

void Executor::Stop() {
  absl::MutexLock join(&join_mu_);
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (const pb::Assignment& a : pending_) held_.erase(AttemptKey(a.task_id(), a.attempt()));
    pending_.clear();
    for (const Started& s : ready_) {
      held_.erase(AttemptKey(s.assignment.task_id(), s.assignment.attempt()));
      --running_;
    }
    ready_.clear();
    for (auto& [id, h] : held_) {
      if (h.token != nullptr) h.token->Cancel();
    }
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  sampler_.Stop();  // every attempt has ended: nothing left to sample
}

void Executor::SlotLoop() {
  while (true) {
    Started work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Executor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) { return e->stopping_ || !e->ready_.empty(); },
          this));
      if (ready_.empty()) return;  // stopping
      --idle_threads_;
      work = std::move(ready_.front());
      ready_.pop_front();
    }
    RunOne(work.assignment, work.token, /*then_idle=*/true);
  }
}

bool Executor::EndLocked(const AttemptKey& key) {
  auto it = held_.find(key);
  bool was_waiting = false;
  if (it != held_.end()) {
    was_waiting = it->second.waiting;
    held_.erase(it);
  }
  if (was_waiting) --waiting_;
  --running_;
  return was_waiting;
}

void Executor::RunOne(const pb::Assignment& a, const std::shared_ptr<StopToken>& token, bool then_idle) {
  Attempt attempt{&a, token.get(), WorkerSnapshot{&capabilities_, running()}, sink_};
  // Held through Execute: Attempt::completion points into it.
  const std::shared_ptr<CompletionInbox> inbox = OpenCompletion(a, &attempt);
  pb::TaskFinished fin = std::move(chain_->Execute(attempt).finished);
  CloseCompletion(a);
  bool report;
  {
    absl::MutexLock lock(&mu_);
    report = !stopping_;  // on shutdown the coordinator requeues what we drop
  }
  // Into the outbox before it leaves held_, so that a register in between lists it in
  // one or the other (never neither, which would requeue a finished attempt).
  if (report) sink_->Finished(std::move(fin));
  bool was_waiting;
  {
    absl::MutexLock lock(&mu_);
    was_waiting = EndLocked(AttemptKey(a.task_id(), a.attempt()));
    // Idle before starting more, so this thread takes the next one instead of a new thread.
    if (then_idle) ++idle_threads_;
    StartQueuedLocked();
  }
  if (was_waiting) ReportWaiting();
}

std::shared_ptr<CompletionInbox> Executor::OpenCompletion(const pb::Assignment& a, Attempt* attempt) {
  auto inbox = std::make_shared<CompletionInbox>();
  absl::MutexLock lock(&completion_mu_);
  inboxes_[AttemptKey(a.task_id(), a.attempt())] = inbox;
  attempt->completion = inbox.get();
  if (!callback_base_.empty()) attempt->callback_url = absl::StrCat(callback_base_, "/tasks/", a.task_id(), "/complete");
  return inbox;
}

void Executor::CloseCompletion(const pb::Assignment& a) {
  absl::MutexLock lock(&completion_mu_);
  inboxes_.erase(AttemptKey(a.task_id(), a.attempt()));
}

bool Executor::Complete(const std::string& task_id, int attempt, ExternalCompletion completion) {
  std::shared_ptr<CompletionInbox> inbox;
  {
    absl::MutexLock lock(&completion_mu_);
    auto it = inboxes_.find(AttemptKey(task_id, attempt));
    if (it != inboxes_.end()) inbox = it->second;
  }
  if (inbox == nullptr) {
    spdlog::info("completion of task {} attempt {} ignored: that attempt is not running here", task_id, attempt);
    return false;
  }
  if (!inbox->Deliver(std::move(completion))) {
    spdlog::info("completion of task {} attempt {} ignored: it had one already", task_id, attempt);
    return false;
  }
  return true;
}

void Executor::SetCallbackBase(std::string base) {
  absl::MutexLock lock(&completion_mu_);
  callback_base_ = std::move(base);
}

}  // namespace rc::worker
