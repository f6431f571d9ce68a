#pragma once
// Task events waiting to go to the coordinator. The Executor adds; the session's writer
// takes them in batches (one stream message carries many). Finished events survive a
// reconnect: they are re-sent with the next register.

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/executor.h"

namespace rc::worker {

class Outbox final : public EventSink {
 public:
  void Started(pb::TaskStarted event) override;
  void Finished(pb::TaskFinished event) override;

  // Waits until events are queued, `until` passes, or Wake(); moves queued events into
  // *msg. True when it moved any.
  bool Take(absl::Time until, pb::WorkerMessage* msg);
  // Puts finished events of a message that could not be written back in front.
  void Restore(const pb::WorkerMessage& msg);
  // Attempts whose results are waiting (reported as held at register).
  std::vector<pb::RunningAttempt> PendingFinished() const;
  void Wake();

 private:
  mutable absl::Mutex mu_;
  std::vector<pb::TaskStarted> started_ ABSL_GUARDED_BY(mu_);
  std::vector<pb::TaskFinished> finished_ ABSL_GUARDED_BY(mu_);
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rc::worker
