#include "worker/outbox.h"

namespace rc::worker {

void Outbox::Started(pb::TaskStarted event) {
  absl::MutexLock lock(&mu_);
  started_.push_back(std::move(event));
}

void Outbox::Finished(pb::TaskFinished event) {
  absl::MutexLock lock(&mu_);
  finished_.push_back(std::move(event));
}

void Outbox::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

bool Outbox::Take(absl::Time until, pb::WorkerMessage* msg) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return woken_ || !started_.empty() || !finished_.empty();
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), until);
  woken_ = false;
  if (started_.empty() && finished_.empty()) return false;
  for (auto& e : started_) *msg->add_started() = std::move(e);
  for (auto& e : finished_) *msg->add_finished() = std::move(e);
  started_.clear();
  finished_.clear();
  return true;
}

void Outbox::Restore(const pb::WorkerMessage& msg) {
  absl::MutexLock lock(&mu_);
  std::vector<pb::TaskFinished> back(msg.finished().begin(), msg.finished().end());
  back.insert(back.end(), std::make_move_iterator(finished_.begin()), std::make_move_iterator(finished_.end()));
  finished_ = std::move(back);
}

std::vector<pb::RunningAttempt> Outbox::PendingFinished() const {
  absl::MutexLock lock(&mu_);
  std::vector<pb::RunningAttempt> out;
  for (const auto& f : finished_) {
    pb::RunningAttempt& r = out.emplace_back();
    r.set_task_id(f.task_id());
    r.set_attempt(f.attempt());
  }
  return out;
}

}  // namespace rc::worker
