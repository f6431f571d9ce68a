#include "worker/session/outbox.h"

namespace rc::worker {

namespace {
constexpr size_t kMaxMessageBytes = 4 << 20;
}  // namespace

void Outbox::SignWith(ResultSigner* signer) {
  absl::MutexLock lock(&mu_);
  signer_ = signer;
}

void Outbox::Started(pb::TaskStarted event) {
  absl::MutexLock lock(&mu_);
  started_.push_back(std::move(event));
}

void Outbox::Finished(pb::TaskFinished event) {
  absl::MutexLock lock(&mu_);
  finished_.push_back(std::move(event));
}

void Outbox::Progress(pb::TaskProgress event) {
  absl::MutexLock lock(&mu_);
  progress_.push_back(std::move(event));
}

void Outbox::Waiting(pb::WaitingAttempts attempts) {
  absl::MutexLock lock(&mu_);
  waiting_ = std::move(attempts);
  waiting_due_ = true;
}

void Outbox::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void Outbox::RequestDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  draining_due_ = true;
}

void Outbox::RequestDeregister() {
  absl::MutexLock lock(&mu_);
  deregister_ = true;
}

void Outbox::Hold() {
  absl::MutexLock lock(&mu_);
  ++holds_;
}

void Outbox::Wait(absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool due = woken_ || draining_due_ || deregister_ || (holds_ == 0 && waiting_due_) ||
                     (holds_ == 0 && (!started_.empty() || !finished_.empty() || !progress_.empty()));
    if (due) ++wakeups_;
    return due;
  };
  clock_->AwaitWithDeadline(&mu_, absl::Condition(&ready), until);
  woken_ = false;
}

int64_t Outbox::wakeups() const {
  absl::MutexLock lock(&mu_);
  return wakeups_;
}

bool Outbox::Take(pb::WorkerMessage* msg) { return TakeDue(msg, /*release_hold=*/false); }

bool Outbox::ReleaseAndTake(pb::WorkerMessage* msg) { return TakeDue(msg, /*release_hold=*/true); }

bool Outbox::TakeDue(pb::WorkerMessage* msg, bool release_hold) {
  ResultSigner* signer = nullptr;
  std::vector<pb::TaskFinished*> batch;  // taken now, not yet signed
  bool any = false;
  {
    absl::MutexLock lock(&mu_);
    if (release_hold) --holds_;
    signer = signer_;
    any = !started_.empty() || !finished_.empty() || !progress_.empty() || draining_due_ || deregister_ ||
          waiting_due_;
    for (auto& e : started_) *msg->add_started() = std::move(e);
    for (auto& e : progress_) *msg->add_progress() = std::move(e);
    progress_.clear();
    // Results with their output can be large: about 4 MiB per message, at least one;
    // the rest stays due for the next Take.
    size_t taken = 0, bytes = 0;
    for (; taken < finished_.size(); ++taken) {
      const size_t n = finished_[taken].ByteSizeLong();
      if (taken > 0 && bytes + n > kMaxMessageBytes) break;
      bytes += n;
      pb::TaskFinished& e = finished_[taken];
      pb::TaskFinished* sent = msg->add_finished();
      *sent = e;
      // A result resent after a reconnect keeps its first signature.
      if (signer != nullptr && !e.has_signature()) batch.push_back(sent);
      std::pair<std::string, int> key(e.task_id(), e.attempt());
      in_flight_.insert_or_assign(std::move(key), std::move(e));
    }
    started_.clear();
    finished_.erase(finished_.begin(), finished_.begin() + static_cast<std::ptrdiff_t>(taken));
    // The whole set, even when empty: the coordinator replaces what it knew.
    if (waiting_due_) *msg->mutable_waiting() = waiting_;
    waiting_due_ = false;
    if (draining_due_) msg->set_draining(true);
    if (deregister_) msg->set_deregister(true);
    draining_due_ = false;
    deregister_ = false;
  }
  if (batch.empty()) return any;
  // The Ed25519 signature (~50 us) without mu_: tasks finishing meanwhile only queue.
  // Until signed, their in-flight copies are unsigned; a copy resent before it got its
  // signature (a reconnect in between) is simply signed in its next message.
  signer->SignBatch(batch);
  absl::MutexLock lock(&mu_);
  for (const pb::TaskFinished* f : batch) {
    if (!f->has_signature()) break;  // signing failed (logged): the batch goes unsigned
    auto it = in_flight_.find(std::make_pair(f->task_id(), static_cast<int>(f->attempt())));
    if (it != in_flight_.end() && !it->second.has_signature()) *it->second.mutable_signature() = f->signature();
  }
  return any;
}

void Outbox::Ack(const std::string& task_id, int attempt) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(std::make_pair(task_id, attempt));
}

void Outbox::ResendInFlight() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, f] : in_flight_) finished_.push_back(std::move(f));
  in_flight_.clear();
  draining_due_ = draining_;  // a new connection must hear it again
}

std::vector<pb::RunningAttempt> Outbox::Unacknowledged() const {
  absl::MutexLock lock(&mu_);
  std::vector<pb::RunningAttempt> out;
  auto add = [&](const pb::TaskFinished& f) {
    pb::RunningAttempt& r = out.emplace_back();
    r.set_task_id(f.task_id());
    r.set_attempt(f.attempt());
  };
  for (const auto& f : finished_) add(f);
  for (const auto& [key, f] : in_flight_) add(f);
  return out;
}

bool Outbox::WaitAcknowledged(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_.empty() && in_flight_.empty(); };
  return clock_->AwaitWithDeadline(&mu_, absl::Condition(&done), clock_->Now() + timeout);
}

}  // namespace rc::worker
