#pragma once
// Handlers that may wait on the store (reads of tasks no longer in RAM, keyed or dependent
// submits, listings, published JavaScript) run here, off the call queue's one thread
// (async_call.h), so that a slow read never holds every other call. Not a poller: these
// threads never touch the completion queue except to begin a call's answer.

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rc::coordinator {

class BlockingCalls {
 public:
  explicit BlockingCalls(int threads);
  ~BlockingCalls() { Stop(); }
  BlockingCalls(const BlockingCalls&) = delete;
  BlockingCalls& operator=(const BlockingCalls&) = delete;

  // Runs `fn` on one of the threads; after Stop, on the caller's.
  void Run(std::function<void()> fn);
  // Runs what is queued, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace rc::coordinator
