#include "coordinator/core/completion_queue.h"

#include <utility>

namespace rc::coordinator {

// ---- CompletionQueue ----

uint64_t CompletionQueue::Reserve() {
  absl::MutexLock lock(&mu_);
  slots_.emplace_back();
  return first_ + slots_.size() - 1;
}

void CompletionQueue::Complete(uint64_t ticket, std::function<void()> work, bool run_here) {
  {
    absl::MutexLock lock(&mu_);
    if (!closed_ && ticket >= first_ && ticket - first_ < slots_.size()) {
      Slot& slot = slots_[ticket - first_];
      slot.complete = true;
      slot.work = std::move(work);
      if (run_here && runner_ == std::thread::id() && HeadRunnable()) DrainLocked();
      return;
    }
  }
  // Closed: `work` is dropped as this returns, outside the lock (its captures may lock).
}

void CompletionQueue::RunIfReady(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  if (ticket >= first_ && ticket - first_ < slots_.size()) slots_[ticket - first_].caller_pending = false;
  const std::thread::id self = std::this_thread::get_id();
  while (!closed_ && finished_ < ticket) {
    if (runner_ == std::thread::id()) {
      if (HeadRunnable()) DrainLocked();
      return;
    }
    if (runner_ == self) return;  // a completion calling back in: the loop below us runs it
    // Another thread runs completions. Ours waits for the store (a later commit brings
    // it) unless it is complete already or being run.
    if (ticket >= first_ && !slots_[ticket - first_].complete) return;
    struct Wait {
      CompletionQueue* q;
      uint64_t ticket;
      // Evaluated by Await, under q->mu_.
      static bool Over(Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w->q->closed_ || w->q->finished_ >= w->ticket || w->q->runner_ == std::thread::id();
      }
    } wait{this, ticket};
    mu_.Await(absl::Condition(&Wait::Over, &wait));
  }
}

bool CompletionQueue::Release(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  if (ticket >= first_ && ticket - first_ < slots_.size()) slots_[ticket - first_].caller_pending = false;
  return !closed_ && runner_ == std::thread::id() && HeadRunnable();
}

void CompletionQueue::DrainIfIdle() {
  absl::MutexLock lock(&mu_);
  if (!closed_ && runner_ == std::thread::id() && HeadRunnable()) DrainLocked();
}

void CompletionQueue::DrainLocked() {
  runner_ = std::this_thread::get_id();
  while (HeadRunnable()) {
    std::function<void()> work = std::move(slots_.front().work);
    slots_.pop_front();
    ++first_;
    mu_.Unlock();
    work();
    work = nullptr;
    mu_.Lock();
    finished_ = first_ - 1;
  }
  runner_ = std::thread::id();
}

void CompletionQueue::Close() {
  std::deque<Slot> dropped;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    first_ += slots_.size();
    dropped.swap(slots_);
  }
}

uint64_t CompletionQueue::ran() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

// ---- CompletionThread ----

CompletionThread::CompletionThread() : thread_([this] { Loop(); }) {}

CompletionThread::~CompletionThread() { Stop(); }

void CompletionThread::Post(std::function<void()> work) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      posted_.push_back(std::move(work));
      return;
    }
  }
  // Stopped: dropped here, outside the lock.
}

void CompletionThread::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void CompletionThread::Loop() {
  while (true) {
    std::deque<std::function<void()>> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](CompletionThread* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) { return t->stopping_ || !t->posted_.empty(); },
          this));
      if (posted_.empty()) return;  // stopping, and everything posted has run
      batch.swap(posted_);
    }
    for (std::function<void()>& work : batch) {
      work();
      work = nullptr;
    }
  }
}

// ---- StoreCompletions ----

StoreCompletions::StoreCompletions(TaskStore* store) : store_(store) {
  posted_ = store_->PostCompletionsTo([thread = thread_](std::function<void()> work) { thread->Post(std::move(work)); });
}

void StoreCompletions::Delivered(uint64_t ticket) {
  if (!posted_) return queue_->RunIfReady(ticket);
  // The queue outlives this call's closure: Stop joins the thread before the queue goes.
  if (queue_->Release(ticket)) thread_->Post([queue = queue_] { queue->DrainIfIdle(); });
}

StoreCompletions::~StoreCompletions() { Stop(); }

void StoreCompletions::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  thread_->Stop();
  store_->PostCompletionsTo(nullptr);
  queue_->Close();
}

}  // namespace rc::coordinator
