#pragma once
// Where the store's answers to the Coordinator's writes come back (STYLE.md "store/:
// completions posted back to the core"). Two pieces:
//
// CompletionQueue puts the completions of operations in the order the operations were
// delivered (a ticket each, taken under the Coordinator's delivery lock) and runs them one
// at a time, never two at once and never out of order: an answer that promises
// durability (submit, cancel, a result's acknowledgement) goes out only after every
// earlier write is settled. It owns no thread: a completion runs on the thread that makes
// it runnable, except that an operation whose store completed inline (MemoryTaskStore,
// or a store refusing writes after Close) runs its own completion itself once it has
// released the Coordinator's locks (RunIfReady); the Coordinator no longer needs a
// thread-local hand-off for that case.
//
// CompletionThread is the core's own thread the SQLite store posts its commits to
// (TaskStore::PostCompletionsTo): the store's writer thread only writes, and the
// scheduling that a commit triggers (Coordinator::Accepted dispatching a new task) runs
// here.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

class CompletionQueue {
 public:
  CompletionQueue() = default;
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // A place in line (tickets count from 1). Call in delivery order, and follow with
  // RunIfReady(ticket) from the same operation once its locks are released.
  uint64_t Reserve();
  // The work of `ticket`, from any thread, once. It runs when every earlier ticket has
  // run: on this thread if that is now, unless the operation that reserved `ticket` has
  // not reached RunIfReady yet (it then runs it itself). Dropped after Close.
  void Complete(uint64_t ticket, std::function<void()> work);
  // Called by the operation that reserved `ticket`, holding no lock: runs what is
  // runnable on this thread. When `ticket` is complete but another thread is running
  // completions, waits until that thread has run it (so a caller whose store completed
  // inline sees its answers before it returns). A completion that calls back into the
  // Coordinator reaches here on the running thread: it returns at once, and the outer
  // loop runs the new work in turn.
  void RunIfReady(uint64_t ticket);
  // Later Complete calls drop their work; what waits for an earlier, never-completed
  // ticket is dropped too (the caller stops whatever could still complete first).
  void Close();

  // Tickets whose work has run (tests, diagnostics).
  uint64_t ran() const;

 private:
  struct Slot {
    bool complete = false;
    bool caller_pending = true;  // its operation has not reached RunIfReady yet
    std::function<void()> work;
  };
  bool HeadRunnable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !slots_.empty() && slots_.front().complete && !slots_.front().caller_pending;
  }
  // Runs runnable slots in order, as the runner, until none is; called and returns with mu_ held.
  void DrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // tickets first_ .. first_ + size - 1
  uint64_t first_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;  // every ticket up to here has run
  std::thread::id runner_ ABSL_GUARDED_BY(mu_);  // the thread running completions, if any
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// One thread running posted closures in the order posted.
class CompletionThread {
 public:
  CompletionThread();
  ~CompletionThread();  // Stop()
  CompletionThread(const CompletionThread&) = delete;
  CompletionThread& operator=(const CompletionThread&) = delete;

  // Runs `work` on the thread after what was posted before. Dropped after Stop.
  void Post(std::function<void()> work);
  // Runs what is posted, then joins the thread.
  void Stop();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;  // one Stop joins
  std::thread thread_;
};

// The Coordinator's end of its store's completions: the queue, and the thread `store`
// posts commits to from construction until Stop.
class StoreCompletions {
 public:
  explicit StoreCompletions(TaskStore* store);
  ~StoreCompletions();  // Stop()
  StoreCompletions(const StoreCompletions&) = delete;
  StoreCompletions& operator=(const StoreCompletions&) = delete;

  CompletionQueue& queue() { return *queue_; }
  // For callbacks handed to the store, which may be called after this object is gone.
  const std::shared_ptr<CompletionQueue>& shared_queue() const { return queue_; }
  // Runs what the store has posted, joins the thread, tells the store to run its
  // callbacks itself again, and closes the queue. Completions of writes still in flight
  // are dropped: close the store first (CoordinatorServer does) to have them run.
  void Stop();

 private:
  TaskStore* const store_;
  const std::shared_ptr<CompletionQueue> queue_ = std::make_shared<CompletionQueue>();
  const std::shared_ptr<CompletionThread> thread_ = std::make_shared<CompletionThread>();
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rc::coordinator
