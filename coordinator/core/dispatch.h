#pragma once
// TaskDispatch: the mechanism around the scheduling policy. Queued tasks wait in line
// per scheduling class; every event that may make a placement possible runs
// DispatchLocked, which assigns the best heads to workers that can run them. A failed
// attempt goes back in line after a backoff (retry_at_), or fails for good.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <tuple>

#include "coordinator/core/core_state.h"

namespace rc::coordinator {

class TaskDispatch : protected CoordinatorState {
 protected:
  using CoordinatorState::CoordinatorState;

  // Puts a queued task back in line at its original place.
  void EnqueueLocked(TaskEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Assigns queued tasks to free workers, best head first, until nothing more fits.
  void DispatchLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the current attempt as FAILED with `why`; the task retries after a backoff,
  // or fails for good when its attempts are used up.
  void RetryOrFailLocked(TaskEntry* e, const std::string& why, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts back in line the tasks whose backoff has passed, and dispatches.
  void ReleaseRetriesLocked(int64_t now_ms, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why each queued class waits: recomputed when the set of accepting workers changes.
  void RefreshReasonsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the records of attempts assigned at least kAssignmentWriteDelay before `now_ms`
  // that are still running (see AssignLocked); from Tick.
  void WriteLateAssignmentsLocked(int64_t now_ms, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `e`'s assignment now if it is still waiting for WriteLateAssignmentsLocked (the
  // task is about to act with its token, e.g. submit a child).
  void WriteAssignmentNowLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new submit (PENDING, not stored yet, waiting for nothing) placed straight on a free
  // worker when no task in line could go to a free worker (NothingInLineCouldGoLocked):
  // the record that stores the submit stores the assignment too, so the task costs one
  // commit, not two. Without an idempotency key the assignment goes to the worker in this
  // operation (e->sent_unstored): the task runs while its submit commits, and its outcome
  // reaches waiters once that commit is done (HeldSnapshot). With a key it waits in
  // e->placed until the commit (SendPlacedLocked): a keyed submit retried after a crash
  // must not run twice. False: it takes the usual way.
  bool PlaceLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The submit of a task sent before its commit (e->sent_unstored) was not stored: its
  // attempt is stopped on the worker, which frees the slot when it reports the end; a
  // task requeued meanwhile leaves the line. The caller forgets the task.
  void RecallUnstoredLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when nothing waits in line, or when no free worker can run any class in line
  // (tasks waiting for a worker that is busy, absent or offline, say a device asleep): a
  // task placed now overtakes nobody who could have had that slot. With more than
  // kMaxClassesChecked classes in line it answers false rather than check them all.
  bool NothingInLineCouldGoLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static constexpr size_t kMaxClassesChecked = 8;
  // The record storing `e`'s submit settled (`stored`: durable): sends a placed
  // assignment to its worker if the attempt is still current; frees its slot when the
  // write failed; hands it back to the queue when the worker left meanwhile.
  void SendPlacedLocked(TaskEntry* e, bool stored, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // How long an assignment's record waits before it is written (see AssignLocked).
  static constexpr int64_t kAssignmentWriteDelayMs = 50;

 private:
  void AssignLocked(TaskEntry* e, WorkerEntry* w, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The bookkeeping of a new attempt of `e` on `w` (its slot, its token) and the message
  // that tells the worker; the lifecycle has moved `e` already (Assign or Place).
  pb::Assignment AttemptLocked(TaskEntry* e, WorkerEntry* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshReasonLocked(ClassId cls) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Assignments not written yet, oldest first: (assigned at ms, task id, attempt).
  std::deque<std::tuple<int64_t, std::string, int32_t>> unwritten_assignments_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
