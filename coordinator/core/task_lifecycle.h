#pragma once
// A task's life, owned in one place: the only code that changes a task's status,
// attempts, attempt history, worker, start/finish times, hand-backs, retry time, the
// dependencies it waits for (waiting_for) and the error message that goes with a move. Every move is an event checked against one
// transition table (from-status x event -> allowed to-statuses); a move the table does
// not allow is refused with FAILED_PRECONDITION and leaves the task exactly as it was.
//
// Design assumption: the caller (the Coordinator's decision layers, under their lock)
// decides *when* an event happens and does the mechanism around it (queue, worker slots,
// writes, watchers); the lifecycle decides whether the move is legal and what the task's
// record becomes. New states add rows to kTransitions and an event method here, not
// special cases in the layers. It also notes every task that ends (TakeEnded), so that
// the layer owning the task graph can propagate the end to children and dependents.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/core/task_table.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

enum class TaskEvent {
  kAccept,       // the submit is durable: PENDING -> QUEUED, or PENDING while it waits for dependencies
                 // (a task placed with its submit keeps its status)
  kAssign,       // dispatch placed it on a worker as a new attempt: QUEUED -> ASSIGNED
  kPlace,        // a new submit goes straight to a free worker, in the record that stores it: PENDING -> ASSIGNED
  kAdopt,        // a worker reports an attempt newer than the store knew: QUEUED -> ASSIGNED
  kStart,        // the worker started the attempt: ASSIGNED -> RUNNING
  kFinish,       // the worker reported a final outcome: ASSIGNED|RUNNING -> terminal
  kRetryOrFail,  // the attempt failed: back to QUEUED after a backoff, or FAILED when used up
  kHandBack,     // the worker left before finishing: back to QUEUED, not counted as a failure
  kCancel,       // a client cancelled it: any unfinished status -> CANCELLED
  kRelease,      // its retry backoff is over: QUEUED (waiting) -> QUEUED (in line)
  kResolve,      // a dependency ended as needed: PENDING, or QUEUED when it was the last one
};

absl::string_view EventName(TaskEvent event);

// One row of the transition table: `event` may move a task whose status is in `from`
// to a status in `to`. Sets are bit masks over pb::TaskStatus values.
struct Transition {
  TaskEvent event;
  uint32_t from;
  uint32_t to;
};

constexpr uint32_t StatusBit(pb::TaskStatus s) { return uint32_t{1} << static_cast<int>(s); }

// The whole table, for tests and for the error messages.
const std::vector<Transition>& TransitionTable();
// Whether the table allows `event` to move a task from `from` to `to`.
bool Allows(pb::TaskStatus from, TaskEvent event, pb::TaskStatus to);
// Whether `event` applies to a task in `from` at all (to any status).
bool Applies(pb::TaskStatus from, TaskEvent event);

// "This is the current attempt of this task on this worker": the task is on a worker
// (assigned or running), as attempt number `attempt`, on `device`. A message about any
// other attempt is stale and must change nothing.
bool IsCurrentAttempt(const pb::Task& task, absl::string_view device, int32_t attempt);

// How failed attempts are retried: attempt n waits initial * 2^(n-1), capped at max,
// scaled by (0.5 + random()/2); `random` empty means 0.5.
struct RetryRule {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Seconds(60);
  std::function<double()> random;
};

// Delay before retry number `retry` (1-based): initial * 2^(retry-1), capped at max,
// scaled by (0.5 + random/2). Pure.
absl::Duration RetryBackoff(int retry, absl::Duration initial, absl::Duration max, double random);

// Applies events to tasks held in a TaskTable, keeping its per-status counts exact
// (TaskTable::SetStatus is called from here only). Not thread-safe: the Coordinator
// calls it under its lock. Every method returns FAILED_PRECONDITION naming the task,
// its status and the event when the move is not allowed, and then changes nothing.
class TaskLifecycle {
 public:
  TaskLifecycle(TaskTable* tasks, RetryRule retry) : tasks_(tasks), retry_(std::move(retry)) {}

  // PENDING: its dependencies not ended yet are `unended` (waiting_for). Set before the
  // submit is accepted (or, at recovery, before Accept); not a move of the table.
  absl::Status AwaitDependencies(TaskEntry* e, std::vector<std::string> unended);
  // The submit is durable (e->accepted): PENDING -> QUEUED, or stays PENDING while it
  // waits for dependencies; a task placed with its submit (Place) keeps its status:
  // ASSIGNED, or where its worker's reports took it before the commit (it was sent before
  // it; Submissions). Refused for a task accepted before.
  absl::Status Accept(TaskEntry* e);
  // PENDING, not accepted, waiting for nothing -> ASSIGNED to `device` as attempt 1: a
  // new submit placed on a free worker, so that the record storing the submit stores the
  // assignment too (one commit instead of two; Submissions). Accept follows the commit.
  absl::Status Place(TaskEntry* e, const std::string& device, int64_t now_ms);
  // PENDING: dependency `dep` (one of waiting_for) ended as this task needed. QUEUED
  // when it was the last and the task is accepted, else still PENDING. Returns the status.
  absl::StatusOr<pb::TaskStatus> Resolve(TaskEntry* e, const std::string& dep);
  // QUEUED (in line, not waiting out a backoff) -> ASSIGNED to `device` as the next
  // attempt number (above any a worker ever reported), with a new attempt record.
  absl::Status Assign(TaskEntry* e, const std::string& device, int64_t now_ms);
  // QUEUED -> ASSIGNED to `device` as `attempt`, which must be above the task's attempts
  // (a worker runs an attempt the store had not recorded yet). Ends any backoff.
  absl::Status Adopt(TaskEntry* e, const std::string& device, int32_t attempt, int64_t now_ms);
  // ASSIGNED -> RUNNING, started now.
  absl::Status Start(TaskEntry* e, int64_t now_ms);
  // The worker says the attempt ran for `ran_ms`: fills in a start it never reported
  // (ASSIGNED or RUNNING only; the status does not change).
  absl::Status NoteRunTime(TaskEntry* e, int64_t ran_ms, int64_t now_ms);
  // ASSIGNED|RUNNING -> `to` (a terminal status), with the worker's error message.
  absl::Status Finish(TaskEntry* e, pb::TaskStatus to, const std::string& error, int64_t now_ms);
  // ASSIGNED|RUNNING: the attempt failed with `why`. QUEUED waiting out a backoff
  // (next_attempt_at_ms set) while attempts remain (1 + max_retries + hand-backs), else
  // FAILED for good. Returns the status the task moved to.
  absl::StatusOr<pb::TaskStatus> RetryOrFail(TaskEntry* e, const std::string& why, int64_t now_ms);
  // ASSIGNED|RUNNING -> QUEUED: the attempt ends CANCELLED with `why`; it does not count
  // against the retries.
  absl::Status HandBack(TaskEntry* e, const std::string& why, int64_t now_ms);
  // PENDING|QUEUED|ASSIGNED|RUNNING -> CANCELLED with `why`; an attempt on a worker ends
  // CANCELLED too, and a pending task stops waiting. Also the end of a task cancelled
  // by the graph (its parent ended, or a dependency ended so it can never run).
  absl::Status Cancel(TaskEntry* e, const std::string& why, int64_t now_ms);
  // QUEUED waiting out a backoff -> QUEUED in line (next_attempt_at_ms cleared).
  absl::Status Release(TaskEntry* e);

  // Ids of the tasks that reached a terminal status since the last call, in order.
  std::vector<std::string> TakeEnded() { return std::exchange(ended_, {}); }
  bool any_ended() const { return !ended_.empty(); }

 private:
  // The one status change: keeps the table's counts, notes an end, and clears the
  // attempt's token hash when an attempt ends (a finished record never carries one).
  void Move(TaskEntry* e, pb::TaskStatus to);
  // OK when the table allows the move; the refusal otherwise.
  absl::Status Check(const TaskEntry& e, TaskEvent event, pb::TaskStatus to) const;
  absl::Status Refuse(const TaskEntry& e, TaskEvent event, absl::string_view why) const;
  // A new attempt on `device` (Assign, Place): the next number, a new attempt record.
  void NewAttempt(TaskEntry* e, const std::string& device, int64_t now_ms);

  TaskTable* const tasks_;
  const RetryRule retry_;
  std::vector<std::string> ended_;
};

}  // namespace rc::coordinator
