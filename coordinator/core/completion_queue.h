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
// here; only a small commit with nothing queued behind it completes on the writer.

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
  // RunIfReady(ticket) (or Release) from the same operation once its locks are released.
  uint64_t Reserve();
  // The work of `ticket`, from any thread, once. It runs when every earlier ticket has
  // run: on this thread if that is now and `run_here`, unless the operation that
  // reserved `ticket` has not reached RunIfReady/Release yet (it then sees to it).
  // Dropped after Close.
  void Complete(uint64_t ticket, std::function<void()> work, bool run_here = true);
  // Called by the operation that reserved `ticket`, holding no lock, when its store
  // completes inline: runs what is runnable on this thread. When `ticket` is complete but
  // another thread is running completions, waits until that thread has run it. If an
  // earlier operation has not reached RunIfReady yet, returns at once: that operation's
  // caller runs ours in turn (order is kept; our answer may come just after we return).
  // A completion that calls back into the Coordinator reaches here on the running
  // thread: it returns at once, and the outer loop runs the new work in turn.
  void RunIfReady(uint64_t ticket);
  // Instead of RunIfReady, when completions run on a thread of their own: marks the
  // operation of `ticket` delivered and never runs or waits here. True when the caller
  // must have that thread call DrainIfIdle (the head became runnable with nobody running).
  bool Release(uint64_t ticket);
  // Runs what is runnable, unless another thread already does.
  void DrainIfIdle();
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
  // The operation of `ticket` is delivered and holds no lock. With a store that posts
  // its commits to our thread, completions run there only, so a caller (a gRPC reaction,
  // say) never runs dispatch or waits for a backlog (STYLE.md rule 8); with an inline
  // store, the caller runs its own completion (CompletionQueue::RunIfReady).
  void Delivered(uint64_t ticket);
  // Whether completions run on the completion thread only (see Delivered).
  bool posted() const { return posted_; }
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
  bool posted_ = false;  // the store posts its commits to thread_ (set once, in the constructor)
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rc::coordinator
