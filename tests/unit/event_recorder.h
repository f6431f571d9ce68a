#pragma once
// The worker's events as an Executor reports them, recorded for tests (thread-safe: slot
// threads report while the test waits).

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/execution/executor.h"

namespace rc::worker {

class Recorder final : public EventSink {
 public:
  void Started(pb::TaskStarted e) override {
    absl::MutexLock lock(&mu);
    started.push_back(e);
  }
  void Finished(pb::TaskFinished e) override {
    absl::MutexLock lock(&mu);
    finished.push_back(e);
  }
  void Progress(pb::TaskProgress e) override {
    absl::MutexLock lock(&mu);
    progress.push_back(e);
  }
  void Waiting(pb::WaitingAttempts w) override {
    absl::MutexLock lock(&mu);
    waiting.push_back(w);
  }
  // Waits (bounded, real time) for `n` finished events.
  bool WaitFinished(size_t n, absl::Duration limit = absl::Seconds(10)) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return finished.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), limit);
  }
  absl::Mutex mu;
  std::vector<pb::TaskStarted> started ABSL_GUARDED_BY(mu);
  std::vector<pb::TaskFinished> finished ABSL_GUARDED_BY(mu);
  std::vector<pb::TaskProgress> progress ABSL_GUARDED_BY(mu);
  std::vector<pb::WaitingAttempts> waiting ABSL_GUARDED_BY(mu);  // each set reported, in order
};

}  // namespace rc::worker
