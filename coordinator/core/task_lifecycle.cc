#include "coordinator/core/task_lifecycle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/task_defaults.h"
#include "common/task_names.h"

namespace rc::coordinator {
namespace {

constexpr uint32_t kPending = StatusBit(pb::TASK_STATUS_PENDING);
constexpr uint32_t kQueued = StatusBit(pb::TASK_STATUS_QUEUED);
constexpr uint32_t kAssigned = StatusBit(pb::TASK_STATUS_ASSIGNED);
constexpr uint32_t kRunning = StatusBit(pb::TASK_STATUS_RUNNING);
constexpr uint32_t kSuccess = StatusBit(pb::TASK_STATUS_SUCCESS);
constexpr uint32_t kFailed = StatusBit(pb::TASK_STATUS_FAILED);
constexpr uint32_t kCancelled = StatusBit(pb::TASK_STATUS_CANCELLED);
constexpr uint32_t kTimeout = StatusBit(pb::TASK_STATUS_TIMEOUT);
constexpr uint32_t kOnWorker = kAssigned | kRunning;

pb::Attempt* LastAttempt(pb::Task& t) {
  return t.attempt_history_size() > 0 ? t.mutable_attempt_history(t.attempt_history_size() - 1) : nullptr;
}

}  // namespace

const std::vector<Transition>& TransitionTable() {
  static const std::vector<Transition> table = {
      {TaskEvent::kAccept, kPending, kPending | kQueued},
      {TaskEvent::kAccept, kAssigned, kAssigned},  // placed with its submit
      // Placed with its submit and sent at once: its attempt may have moved on before the
      // commit (started, ended, or lost with its worker); accepting changes nothing of it.
      {TaskEvent::kAccept, kRunning, kRunning},
      {TaskEvent::kAccept, kQueued, kQueued},
      {TaskEvent::kAccept, kSuccess, kSuccess},
      {TaskEvent::kAccept, kFailed, kFailed},
      {TaskEvent::kAccept, kCancelled, kCancelled},
      {TaskEvent::kAccept, kTimeout, kTimeout},
      {TaskEvent::kAssign, kQueued, kAssigned},
      {TaskEvent::kPlace, kPending, kAssigned},
      {TaskEvent::kAdopt, kQueued, kAssigned},
      {TaskEvent::kStart, kAssigned, kRunning},
      {TaskEvent::kFinish, kOnWorker, kSuccess | kFailed | kCancelled | kTimeout},
      {TaskEvent::kRetryOrFail, kOnWorker, kQueued | kFailed},
      {TaskEvent::kHandBack, kOnWorker, kQueued},
      {TaskEvent::kCancel, kPending | kQueued | kOnWorker, kCancelled},
      {TaskEvent::kRelease, kQueued, kQueued},
      {TaskEvent::kResolve, kPending, kPending | kQueued},
  };
  return table;
}

absl::string_view EventName(TaskEvent event) {
  switch (event) {
    case TaskEvent::kAccept: return "accept";
    case TaskEvent::kAssign: return "assign";
    case TaskEvent::kPlace: return "place";
    case TaskEvent::kAdopt: return "adopt";
    case TaskEvent::kStart: return "start";
    case TaskEvent::kFinish: return "finish";
    case TaskEvent::kRetryOrFail: return "retry-or-fail";
    case TaskEvent::kHandBack: return "hand back";
    case TaskEvent::kCancel: return "cancel";
    case TaskEvent::kRelease: return "release";
    case TaskEvent::kResolve: return "resolve";
  }
  return "unknown event";
}

bool Allows(pb::TaskStatus from, TaskEvent event, pb::TaskStatus to) {
  for (const Transition& row : TransitionTable()) {
    if (row.event == event && (row.from & StatusBit(from)) != 0 && (row.to & StatusBit(to)) != 0) return true;
  }
  return false;
}

bool Applies(pb::TaskStatus from, TaskEvent event) {
  for (const Transition& row : TransitionTable()) {
    if (row.event == event && (row.from & StatusBit(from)) != 0) return true;
  }
  return false;
}

bool IsCurrentAttempt(const pb::Task& t, absl::string_view device, int32_t attempt) {
  return (t.status() == pb::TASK_STATUS_ASSIGNED || t.status() == pb::TASK_STATUS_RUNNING) &&
         t.attempts() == attempt && t.worker_device_id() == device;
}

absl::Duration RetryBackoff(int retry, absl::Duration initial, absl::Duration max, double random) {
  absl::Duration d = initial;
  for (int i = 1; i < retry && d < max; ++i) d *= 2;
  return std::min(d, max) * (0.5 + random / 2);
}

absl::Status TaskLifecycle::Refuse(const TaskEntry& e, TaskEvent event, absl::string_view why) const {
  return absl::FailedPreconditionError(absl::StrCat("task ", e.task.task_id(), ": ", EventName(event),
                                                    " is not allowed from ", StatusName(e.task.status()), why));
}

absl::Status TaskLifecycle::Check(const TaskEntry& e, TaskEvent event, pb::TaskStatus to) const {
  if (Allows(e.task.status(), event, to)) return absl::OkStatus();
  if (!Applies(e.task.status(), event)) return Refuse(e, event, "");
  return Refuse(e, event, absl::StrCat(" to ", StatusName(to)));
}

void TaskLifecycle::Move(TaskEntry* e, pb::TaskStatus to) {
  const pb::TaskStatus from = e->task.status();
  const bool on_worker = to == pb::TASK_STATUS_ASSIGNED || to == pb::TASK_STATUS_RUNNING;
  if ((from == pb::TASK_STATUS_ASSIGNED || from == pb::TASK_STATUS_RUNNING) && !on_worker) {
    e->task.clear_attempt_token_sha256();  // the attempt ended: its token is void
  }
  tasks_->SetStatus(e, to);
  if (!IsTerminal(from) && IsTerminal(to)) ended_.push_back(e->task.task_id());
}

absl::Status TaskLifecycle::AwaitDependencies(TaskEntry* e, std::vector<std::string> unended) {
  if (e->task.status() != pb::TASK_STATUS_PENDING || e->accepted) {
    return absl::FailedPreconditionError(absl::StrCat("task ", e->task.task_id(), ": dependencies are set only before ",
                                                      "it is accepted, not when ", StatusName(e->task.status())));
  }
  std::sort(unended.begin(), unended.end());
  unended.erase(std::unique(unended.begin(), unended.end()), unended.end());
  e->task.mutable_waiting_for()->Assign(unended.begin(), unended.end());
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Accept(TaskEntry* e) {
  // Only a pending task moves; any other was placed with its submit and stays as it is.
  const pb::TaskStatus to = e->task.status() != pb::TASK_STATUS_PENDING ? e->task.status()
                            : e->task.waiting_for_size() > 0            ? pb::TASK_STATUS_PENDING
                                                                        : pb::TASK_STATUS_QUEUED;
  if (absl::Status s = Check(*e, TaskEvent::kAccept, to); !s.ok()) return s;
  if (e->accepted) return Refuse(*e, TaskEvent::kAccept, " (accepted before)");
  e->accepted = true;
  if (to != e->task.status()) Move(e, to);
  return absl::OkStatus();
}

absl::StatusOr<pb::TaskStatus> TaskLifecycle::Resolve(TaskEntry* e, const std::string& dep) {
  pb::Task& t = e->task;
  auto it = std::find(t.waiting_for().begin(), t.waiting_for().end(), dep);
  const bool last = it != t.waiting_for().end() && t.waiting_for_size() == 1;
  const pb::TaskStatus to = last && e->accepted ? pb::TASK_STATUS_QUEUED : pb::TASK_STATUS_PENDING;
  if (absl::Status s = Check(*e, TaskEvent::kResolve, to); !s.ok()) return s;
  if (it == t.waiting_for().end()) return Refuse(*e, TaskEvent::kResolve, absl::StrCat(" (not waiting for ", dep, ")"));
  t.mutable_waiting_for()->erase(it);
  if (to != pb::TASK_STATUS_PENDING) Move(e, to);
  return to;
}

absl::Status TaskLifecycle::Assign(TaskEntry* e, const std::string& device, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kAssign, pb::TASK_STATUS_ASSIGNED); !s.ok()) return s;
  if (e->task.next_attempt_at_ms() > 0) return Refuse(*e, TaskEvent::kAssign, " (waiting out a retry backoff)");
  NewAttempt(e, device, now_ms);
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Place(TaskEntry* e, const std::string& device, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kPlace, pb::TASK_STATUS_ASSIGNED); !s.ok()) return s;
  if (e->accepted) return Refuse(*e, TaskEvent::kPlace, " (accepted before: only a new submit is placed)");
  if (e->task.waiting_for_size() > 0) return Refuse(*e, TaskEvent::kPlace, " (it waits for dependencies)");
  NewAttempt(e, device, now_ms);
  return absl::OkStatus();
}

void TaskLifecycle::NewAttempt(TaskEntry* e, const std::string& device, int64_t now_ms) {
  pb::Task& t = e->task;
  t.set_attempts(std::max(t.attempts(), e->highest_attempt_seen) + 1);
  t.set_worker_device_id(device);
  t.set_started_at_ms(0);
  t.clear_unschedulable_reason();
  t.clear_resource_usage();
  pb::Attempt* a = t.add_attempt_history();
  a->set_number(t.attempts());
  a->set_worker_device_id(device);
  a->set_assigned_at_ms(now_ms);
  a->set_status(pb::TASK_STATUS_ASSIGNED);
  Move(e, pb::TASK_STATUS_ASSIGNED);
}

absl::Status TaskLifecycle::Adopt(TaskEntry* e, const std::string& device, int32_t attempt, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kAdopt, pb::TASK_STATUS_ASSIGNED); !s.ok()) return s;
  if (attempt <= e->task.attempts()) {
    return Refuse(*e, TaskEvent::kAdopt,
                  absl::StrCat(" (attempt ", attempt, " is not above its ", e->task.attempts(), " attempts)"));
  }
  pb::Task& t = e->task;
  t.set_next_attempt_at_ms(0);
  t.set_attempts(attempt);
  t.set_worker_device_id(device);
  pb::Attempt* a = t.add_attempt_history();
  a->set_number(attempt);
  a->set_worker_device_id(device);
  a->set_assigned_at_ms(now_ms);
  a->set_status(pb::TASK_STATUS_ASSIGNED);
  Move(e, pb::TASK_STATUS_ASSIGNED);
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Start(TaskEntry* e, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kStart, pb::TASK_STATUS_RUNNING); !s.ok()) return s;
  Move(e, pb::TASK_STATUS_RUNNING);
  e->task.set_started_at_ms(now_ms);
  if (pb::Attempt* a = LastAttempt(e->task)) {
    a->set_started_at_ms(now_ms);
    a->set_status(pb::TASK_STATUS_RUNNING);
  }
  return absl::OkStatus();
}

absl::Status TaskLifecycle::NoteRunTime(TaskEntry* e, int64_t ran_ms, int64_t now_ms) {
  const pb::TaskStatus s = e->task.status();
  if (s != pb::TASK_STATUS_ASSIGNED && s != pb::TASK_STATUS_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("task ", e->task.task_id(), ": a run time is not recorded from ",
                                                      StatusName(s)));
  }
  pb::Task& t = e->task;
  if (t.started_at_ms() == 0) t.set_started_at_ms(now_ms - ran_ms);
  if (pb::Attempt* a = LastAttempt(t); a != nullptr && a->started_at_ms() == 0) a->set_started_at_ms(t.started_at_ms());
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Finish(TaskEntry* e, pb::TaskStatus to, const std::string& error, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kFinish, to); !s.ok()) return s;
  pb::Task& t = e->task;
  Move(e, to);
  t.set_error_message(error);
  t.set_finished_at_ms(now_ms);
  if (pb::Attempt* a = LastAttempt(t)) {
    a->set_finished_at_ms(now_ms);
    a->set_status(to);
    a->set_error_message(error);
  }
  return absl::OkStatus();
}

absl::StatusOr<pb::TaskStatus> TaskLifecycle::RetryOrFail(TaskEntry* e, const std::string& why, int64_t now_ms) {
  pb::Task& t = e->task;
  const int max_attempts = 1 + MaxRetries(t.spec().requirements()) + t.handed_back();
  const pb::TaskStatus to = t.attempts() < max_attempts ? pb::TASK_STATUS_QUEUED : pb::TASK_STATUS_FAILED;
  if (absl::Status s = Check(*e, TaskEvent::kRetryOrFail, to); !s.ok()) return s;
  if (pb::Attempt* a = LastAttempt(t)) {
    a->set_status(pb::TASK_STATUS_FAILED);
    a->set_error_message(why);
    a->set_finished_at_ms(now_ms);
  }
  Move(e, to);
  if (to == pb::TASK_STATUS_QUEUED) {
    t.set_started_at_ms(0);
    t.clear_worker_device_id();  // the attempt history keeps where it ran
    t.set_error_message(why);    // the last failure, until an attempt succeeds
    const absl::Duration wait =
        RetryBackoff(t.attempts(), retry_.initial, retry_.max, retry_.random ? retry_.random() : 0.5);
    t.set_next_attempt_at_ms(now_ms + absl::ToInt64Milliseconds(wait));
  } else {
    t.set_error_message(absl::StrCat(why, " (attempt ", t.attempts(), " of ", max_attempts, "; no retries left)"));
    t.set_finished_at_ms(now_ms);
  }
  return to;
}

absl::Status TaskLifecycle::HandBack(TaskEntry* e, const std::string& why, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kHandBack, pb::TASK_STATUS_QUEUED); !s.ok()) return s;
  pb::Task& t = e->task;
  if (pb::Attempt* a = LastAttempt(t)) {
    a->set_status(pb::TASK_STATUS_CANCELLED);
    a->set_error_message(why);
    a->set_finished_at_ms(now_ms);
  }
  t.set_handed_back(t.handed_back() + 1);
  Move(e, pb::TASK_STATUS_QUEUED);
  t.set_started_at_ms(0);
  t.clear_worker_device_id();
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Cancel(TaskEntry* e, const std::string& why, int64_t now_ms) {
  if (absl::Status s = Check(*e, TaskEvent::kCancel, pb::TASK_STATUS_CANCELLED); !s.ok()) return s;
  pb::Task& t = e->task;
  const pb::TaskStatus from = t.status();
  if (from == pb::TASK_STATUS_QUEUED) t.set_next_attempt_at_ms(0);
  t.clear_waiting_for();  // a cancelled task waits for nothing
  Move(e, pb::TASK_STATUS_CANCELLED);
  t.set_error_message(why);
  t.set_finished_at_ms(now_ms);
  if (from == pb::TASK_STATUS_ASSIGNED || from == pb::TASK_STATUS_RUNNING) {
    if (pb::Attempt* a = LastAttempt(t)) {
      a->set_status(pb::TASK_STATUS_CANCELLED);
      a->set_finished_at_ms(now_ms);
    }
  }
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Release(TaskEntry* e) {
  if (absl::Status s = Check(*e, TaskEvent::kRelease, pb::TASK_STATUS_QUEUED); !s.ok()) return s;
  e->task.set_next_attempt_at_ms(0);
  return absl::OkStatus();
}

}  // namespace rc::coordinator
