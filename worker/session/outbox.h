#pragma once
// What the worker owes the coordinator: task events, batched (one stream message
// carries many), and the draining / deregister flags of a shutdown. A finished event
// stays here, in flight, until the coordinator acknowledges it; after a reconnect every
// unacknowledged one is sent again (the coordinator ignores duplicates), so a result
// is never lost to a broken stream. With a signer, the results of each message are
// signed as one batch when taken (worker_key.h); a resent result keeps the signature of
// the batch it was first sent in.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "worker/execution/attempt_executor.h"
#include "worker/worker_key.h"

namespace rc::worker {

class Outbox final : public EventSink {
 public:
  // `clock`: what Wait's and WaitAcknowledged's times are on (the Session's).
  explicit Outbox(const Clock* clock = RealClock::Get()) : clock_(clock) {}

  // Signs the results of every later Take (null: sent unsigned, as in tests that do not
  // sign). The signer outlives this outbox's last Take.
  void SignWith(ResultSigner* signer);

  void Started(pb::TaskStarted event) override;
  void Finished(pb::TaskFinished event) override;
  void Progress(pb::TaskProgress event) override;
  // Keeps the latest set; the next Take carries it (WorkerMessage.waiting).
  void Waiting(pb::WaitingAttempts attempts) override;

  // Waits until something is due, the clock reaches `until`, or Wake().
  void Wait(absl::Time until);
  // Moves what is due into *msg at once (finished events stay in flight until Ack).
  // True when it moved anything. The results not yet signed are signed as one batch
  // after mu_ is released (the executor's threads keep reporting meanwhile), so callers
  // should take from one thread at a time (the session does, under its write lock).
  bool Take(pb::WorkerMessage* msg);
  // While held, new events do not end a Wait: the holder (the stream's reader, which
  // just ran instant tasks) sends them itself, sparing the writer thread a wake-up.
  void Hold();
  // Ends a Hold and takes what is due (as Take) in one step: what the holder queued is
  // gone before a waiting writer could see it. Releasing first and then taking woke the
  // writer for every instant task, to find nothing (issue 18: ~4 futex calls per task).
  bool ReleaseAndTake(pb::WorkerMessage* msg);
  void Ack(const std::string& task_id, int attempt);
  // For a new connection: every unacknowledged finished event becomes due again.
  void ResendInFlight();
  // Attempts whose results the coordinator has not acknowledged (held at register).
  std::vector<pb::RunningAttempt> Unacknowledged() const;
  // True once every finished event is acknowledged; false if `timeout` passes first.
  bool WaitAcknowledged(absl::Duration timeout) const;
  // Shutdown: the next Take carries draining / deregister.
  void RequestDraining();
  void RequestDeregister();
  void Wake();
  // How often a Wait found something due (each may wake the writer thread; a waiter
  // counts the condition it saw true, whoever evaluated it). Tests, diagnostics.
  int64_t wakeups() const;

 private:
  // Take, and with `release_hold` the end of a Hold under the same lock.
  bool TakeDue(pb::WorkerMessage* msg, bool release_hold);
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  ResultSigner* signer_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<pb::TaskStarted> started_ ABSL_GUARDED_BY(mu_);
  std::vector<pb::TaskProgress> progress_ ABSL_GUARDED_BY(mu_);
  std::vector<pb::TaskFinished> finished_ ABSL_GUARDED_BY(mu_);   // due
  // Sent, not acknowledged; by (task id, attempt), as acks name them.
  absl::flat_hash_map<std::pair<std::string, int>, pb::TaskFinished> in_flight_ ABSL_GUARDED_BY(mu_);
  pb::WaitingAttempts waiting_ ABSL_GUARDED_BY(mu_);  // the latest set
  bool waiting_due_ ABSL_GUARDED_BY(mu_) = false;     // changed since the last Take
  bool draining_ ABSL_GUARDED_BY(mu_) = false;      // shutting down
  bool draining_due_ ABSL_GUARDED_BY(mu_) = false;  // not yet said on this connection
  bool deregister_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rc::worker
