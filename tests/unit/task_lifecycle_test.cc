// The task lifecycle: every move its transition table allows, a refusal for every move
// it does not (leaving the task and the counts untouched), and what each event does to
// attempts, attempt history, times and messages.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/task_lifecycle.h"
#include "coordinator/core/task_table.h"
#include "google/protobuf/util/message_differencer.h"

namespace rc::coordinator {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

const std::vector<pb::TaskStatus> kAllStatuses = {
    pb::TASK_STATUS_PENDING, pb::TASK_STATUS_QUEUED,  pb::TASK_STATUS_ASSIGNED,  pb::TASK_STATUS_RUNNING,
    pb::TASK_STATUS_SUCCESS, pb::TASK_STATUS_FAILED, pb::TASK_STATUS_CANCELLED, pb::TASK_STATUS_TIMEOUT};
const std::vector<TaskEvent> kAllEvents = {TaskEvent::kAccept,      TaskEvent::kAssign,   TaskEvent::kPlace,
                                           TaskEvent::kAdopt,       TaskEvent::kStart,    TaskEvent::kFinish,
                                           TaskEvent::kRetryOrFail, TaskEvent::kHandBack, TaskEvent::kCancel,
                                           TaskEvent::kRelease,     TaskEvent::kResolve};

struct Table {
  TaskTable tasks;
  TaskLifecycle lifecycle{&tasks, RetryRule{absl::Seconds(1), absl::Seconds(60), [] { return 0.0; }}};
  uint64_t seq = 0;

  // A task as it would be in `status`: on worker "w1" as attempt 1 when assigned or
  // running (or finished), waiting out a backoff when `backoff`.
  TaskEntry* Add(pb::TaskStatus status, int max_retries = 3, bool backoff = false) {
    auto e = std::make_unique<TaskEntry>();
    pb::Task& t = e->task;
    t.set_task_id("task-" + std::to_string(++seq));
    t.set_status(status);
    t.mutable_spec()->set_task_type("echo");
    t.mutable_spec()->mutable_requirements()->set_max_retries(max_retries);
    e->key = QueueKey{pb::PRIORITY_NORMAL, seq};
    if (status != pb::TASK_STATUS_PENDING && status != pb::TASK_STATUS_QUEUED) {
      t.set_attempts(1);
      t.set_worker_device_id("w1");
      pb::Attempt* a = t.add_attempt_history();
      a->set_number(1);
      a->set_worker_device_id("w1");
      a->set_assigned_at_ms(kNow - 10);
      a->set_status(status == pb::TASK_STATUS_RUNNING || IsTerminal(status) ? status : pb::TASK_STATUS_ASSIGNED);
    }
    if (backoff) t.set_next_attempt_at_ms(kNow + 500);
    return tasks.Insert(std::move(e));
  }

  // Applies `event` aiming at `to` (the lifecycle picks the status itself for retries;
  // for accept and resolve, a pending task waits for one or two dependencies to get there).
  absl::Status Apply(TaskEntry* e, TaskEvent event, pb::TaskStatus to) {
    const bool pending = e->task.status() == pb::TASK_STATUS_PENDING;
    switch (event) {
      case TaskEvent::kAccept:
        if (pending && to == pb::TASK_STATUS_PENDING) (void)lifecycle.AwaitDependencies(e, {"task-dep"});
        return lifecycle.Accept(e);
      case TaskEvent::kResolve:
        if (pending) {
          std::vector<std::string> deps = {"task-dep"};
          if (to == pb::TASK_STATUS_PENDING) deps.push_back("task-dep2");
          (void)lifecycle.AwaitDependencies(e, deps);
          (void)lifecycle.Accept(e);
        }
        return lifecycle.Resolve(e, "task-dep").status();
      case TaskEvent::kAssign: return lifecycle.Assign(e, "w2", kNow);
      case TaskEvent::kPlace: return lifecycle.Place(e, "w2", kNow);
      case TaskEvent::kAdopt: return lifecycle.Adopt(e, "w2", e->task.attempts() + 1, kNow);
      case TaskEvent::kStart: return lifecycle.Start(e, kNow);
      case TaskEvent::kFinish: return lifecycle.Finish(e, to, "boom", kNow);
      case TaskEvent::kRetryOrFail: return lifecycle.RetryOrFail(e, "lost", kNow).status();
      case TaskEvent::kHandBack: return lifecycle.HandBack(e, "handed back", kNow);
      case TaskEvent::kCancel: return lifecycle.Cancel(e, "cancelled by client", kNow);
      case TaskEvent::kRelease: return lifecycle.Release(e);
    }
    return absl::InternalError("unknown event");
  }

  std::vector<int64_t> Counts() const {
    std::vector<int64_t> out;
    for (pb::TaskStatus s : kAllStatuses) out.push_back(tasks.count(s));
    return out;
  }
};

std::string Describe(pb::TaskStatus from, TaskEvent event, pb::TaskStatus to) {
  return absl::StrCat(StatusName(from), " --", EventName(event), "--> ", StatusName(to));
}

}  // namespace

TEST_CASE("Lifecycle: every move in the transition table is made, and the counts follow") {
  int moves = 0;
  for (const Transition& row : TransitionTable()) {
    for (pb::TaskStatus from : kAllStatuses) {
      if ((row.from & StatusBit(from)) == 0) continue;
      for (pb::TaskStatus to : kAllStatuses) {
        if ((row.to & StatusBit(to)) == 0) continue;
        INFO(Describe(from, row.event, to));
        Table t;
        // A retry that fails for good needs its attempts used up (max_retries 0).
        const int max_retries = row.event == TaskEvent::kRetryOrFail && to == pb::TASK_STATUS_FAILED ? 0 : 3;
        TaskEntry* e = t.Add(from, max_retries, row.event == TaskEvent::kRelease);
        REQUIRE(t.Apply(e, row.event, to).ok());
        CHECK(e->task.status() == to);
        CHECK(t.tasks.count(to) == 1);
        if (from != to) CHECK(t.tasks.count(from) == 0);
        CHECK(Allows(from, row.event, to));
        ++moves;
      }
    }
  }
  // accept 9, assign 1, place 1, adopt 1, start 1, finish 2x4, retry 2x2, hand back 2, cancel 4, release 1,
  // resolve 2
  CHECK(moves == 34);
}

TEST_CASE("Lifecycle: a move the table does not allow is refused and changes nothing") {
  int refused = 0;
  for (pb::TaskStatus from : kAllStatuses) {
    for (TaskEvent event : kAllEvents) {
      if (Applies(from, event)) continue;
      INFO(Describe(from, event, pb::TASK_STATUS_UNSPECIFIED));
      Table t;
      TaskEntry* e = t.Add(from);
      const pb::Task before = e->task;
      const std::vector<int64_t> counts = t.Counts();
      absl::Status s = t.Apply(e, event, pb::TASK_STATUS_SUCCESS);
      CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
      CHECK_THAT(std::string(s.message()), Catch::Contains(e->task.task_id()) &&
                                               Catch::Contains(std::string(StatusName(from))) &&
                                               Catch::Contains(std::string(EventName(event))));
      CHECK(google::protobuf::util::MessageDifferencer::Equals(before, e->task));
      CHECK(t.Counts() == counts);
      ++refused;
    }
  }
  CHECK(refused > 40);  // every finished status refuses every event, among others
}

TEST_CASE("Lifecycle: a finish to a status that is not terminal is refused") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_RUNNING);
  const pb::Task before = e->task;
  absl::Status s = t.lifecycle.Finish(e, pb::TASK_STATUS_QUEUED, "", kNow);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("to queued"));
  CHECK(google::protobuf::util::MessageDifferencer::Equals(before, e->task));
}

TEST_CASE("Lifecycle: guards beyond the status refuse too (backoff, adopted attempt number)") {
  Table t;
  TaskEntry* waiting = t.Add(pb::TASK_STATUS_QUEUED, 3, /*backoff=*/true);
  absl::Status s = t.lifecycle.Assign(waiting, "w1", kNow);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("retry backoff"));
  CHECK(waiting->task.status() == pb::TASK_STATUS_QUEUED);
  CHECK(waiting->task.attempt_history_size() == 0);

  TaskEntry* queued = t.Add(pb::TASK_STATUS_QUEUED);
  queued->task.set_attempts(2);
  s = t.lifecycle.Adopt(queued, "w1", 2, kNow);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(queued->task.attempts() == 2);
  CHECK(queued->task.status() == pb::TASK_STATUS_QUEUED);
}

TEST_CASE("Lifecycle: place puts a new submit on a worker as attempt 1, and accept keeps it there") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.Place(e, "w1", kNow).ok());
  CHECK(e->task.status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(e->task.attempts() == 1);
  CHECK(e->task.worker_device_id() == "w1");
  REQUIRE(e->task.attempt_history_size() == 1);
  CHECK(e->task.attempt_history(0).assigned_at_ms() == kNow);
  CHECK_FALSE(e->accepted);  // not durable yet
  REQUIRE(t.lifecycle.Accept(e).ok());  // its record (submit and assignment) is durable
  CHECK(e->accepted);
  CHECK(e->task.status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(t.tasks.count(pb::TASK_STATUS_ASSIGNED) == 1);
  CHECK(t.lifecycle.Accept(e).code() == absl::StatusCode::kFailedPrecondition);  // once
}

TEST_CASE("Lifecycle: place is refused for a task accepted before or waiting for dependencies") {
  Table t;
  TaskEntry* accepted = t.Add(pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.AwaitDependencies(accepted, {"task-dep"}).ok());
  REQUIRE(t.lifecycle.Accept(accepted).ok());
  absl::Status s = t.lifecycle.Place(accepted, "w1", kNow);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("accepted before"));
  CHECK(accepted->task.status() == pb::TASK_STATUS_PENDING);

  TaskEntry* waiting = t.Add(pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.AwaitDependencies(waiting, {"task-dep"}).ok());
  s = t.lifecycle.Place(waiting, "w1", kNow);
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("waits for dependencies"));
  CHECK(waiting->task.attempts() == 0);
  CHECK(t.tasks.count(pb::TASK_STATUS_ASSIGNED) == 0);
}

TEST_CASE("Lifecycle: assign numbers attempts above any reported, start and finish fill the attempt record") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_QUEUED);
  e->highest_attempt_seen = 4;  // a worker once reported attempt 4
  e->task.mutable_resource_usage()->set_pid(7);
  REQUIRE(t.lifecycle.Assign(e, "w9", kNow).ok());
  CHECK(e->task.attempts() == 5);
  CHECK(e->task.worker_device_id() == "w9");
  CHECK_FALSE(e->task.has_resource_usage());
  REQUIRE(e->task.attempt_history_size() == 1);
  CHECK(e->task.attempt_history(0).number() == 5);
  CHECK(e->task.attempt_history(0).assigned_at_ms() == kNow);
  CHECK(e->task.attempt_history(0).status() == pb::TASK_STATUS_ASSIGNED);

  REQUIRE(t.lifecycle.Start(e, kNow + 10).ok());
  CHECK(e->task.started_at_ms() == kNow + 10);
  CHECK(e->task.attempt_history(0).started_at_ms() == kNow + 10);
  CHECK(e->task.attempt_history(0).status() == pb::TASK_STATUS_RUNNING);

  REQUIRE(t.lifecycle.Finish(e, pb::TASK_STATUS_TIMEOUT, "ran too long", kNow + 20).ok());
  CHECK(e->task.finished_at_ms() == kNow + 20);
  CHECK(e->task.error_message() == "ran too long");
  CHECK(e->task.attempt_history(0).status() == pb::TASK_STATUS_TIMEOUT);
  CHECK(e->task.attempt_history(0).finished_at_ms() == kNow + 20);
  CHECK(e->task.attempt_history(0).error_message() == "ran too long");
}

TEST_CASE("Lifecycle: a run time reported without a start fills the start in") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_ASSIGNED);
  REQUIRE(t.lifecycle.NoteRunTime(e, 300, kNow).ok());
  CHECK(e->task.started_at_ms() == kNow - 300);
  CHECK(e->task.attempt_history(0).started_at_ms() == kNow - 300);
  CHECK(e->task.status() == pb::TASK_STATUS_ASSIGNED);
  TaskEntry* done = t.Add(pb::TASK_STATUS_SUCCESS);
  CHECK(t.lifecycle.NoteRunTime(done, 300, kNow).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Lifecycle: a failed attempt retries after a backoff until the attempts are used up") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_RUNNING, /*max_retries=*/1);
  absl::StatusOr<pb::TaskStatus> to = t.lifecycle.RetryOrFail(e, "handler failed", kNow);
  REQUIRE(to.ok());
  CHECK(*to == pb::TASK_STATUS_QUEUED);
  CHECK(e->task.worker_device_id().empty());
  CHECK(e->task.started_at_ms() == 0);
  CHECK(e->task.error_message() == "handler failed");
  CHECK(e->task.next_attempt_at_ms() == kNow + 500);  // retry 1: 1 s * (0.5 + 0/2)
  CHECK(e->task.attempt_history(0).status() == pb::TASK_STATUS_FAILED);
  CHECK(e->task.attempt_history(0).error_message() == "handler failed");

  REQUIRE(t.lifecycle.Release(e).ok());
  CHECK(e->task.next_attempt_at_ms() == 0);
  REQUIRE(t.lifecycle.Assign(e, "w1", kNow + 600).ok());
  CHECK(e->task.attempts() == 2);
  to = t.lifecycle.RetryOrFail(e, "handler failed again", kNow + 700);
  REQUIRE(to.ok());
  CHECK(*to == pb::TASK_STATUS_FAILED);
  CHECK(e->task.error_message() == "handler failed again (attempt 2 of 2; no retries left)");
  CHECK(e->task.finished_at_ms() == kNow + 700);
  CHECK(t.tasks.count(pb::TASK_STATUS_FAILED) == 1);
}

TEST_CASE("Lifecycle: a hand-back requeues without using up a retry") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_RUNNING, /*max_retries=*/0);
  REQUIRE(t.lifecycle.HandBack(e, "handed back: worker w1 shut down before it finished", kNow).ok());
  CHECK(e->task.status() == pb::TASK_STATUS_QUEUED);
  CHECK(e->task.handed_back() == 1);
  CHECK(e->task.worker_device_id().empty());
  CHECK(e->task.next_attempt_at_ms() == 0);  // in line at once
  CHECK(e->task.attempt_history(0).status() == pb::TASK_STATUS_CANCELLED);
  // Attempt 2 may still fail and retry once: 1 + 0 retries + 1 hand-back.
  REQUIRE(t.lifecycle.Assign(e, "w2", kNow).ok());
  absl::StatusOr<pb::TaskStatus> to = t.lifecycle.RetryOrFail(e, "lost", kNow);
  REQUIRE(to.ok());
  CHECK(*to == pb::TASK_STATUS_FAILED);  // attempts 2 of 2
}

TEST_CASE("Lifecycle: cancel ends the attempt on a worker, and a queued task's backoff") {
  Table t;
  TaskEntry* running = t.Add(pb::TASK_STATUS_RUNNING);
  REQUIRE(t.lifecycle.Cancel(running, "cancelled by alice", kNow).ok());
  CHECK(running->task.error_message() == "cancelled by alice");
  CHECK(running->task.finished_at_ms() == kNow);
  CHECK(running->task.attempt_history(0).status() == pb::TASK_STATUS_CANCELLED);
  CHECK(running->task.worker_device_id() == "w1");  // where it was stopped

  TaskEntry* waiting = t.Add(pb::TASK_STATUS_QUEUED, 3, /*backoff=*/true);
  REQUIRE(t.lifecycle.Cancel(waiting, "cancelled by client", kNow).ok());
  CHECK(waiting->task.next_attempt_at_ms() == 0);
  CHECK(waiting->task.attempt_history_size() == 0);
  CHECK(t.tasks.count(pb::TASK_STATUS_CANCELLED) == 2);
}

TEST_CASE("Lifecycle: the current attempt is the task's attempt on its worker, while on a worker") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_RUNNING);
  CHECK(IsCurrentAttempt(e->task, "w1", 1));
  CHECK_FALSE(IsCurrentAttempt(e->task, "w2", 1));  // another worker
  CHECK_FALSE(IsCurrentAttempt(e->task, "w1", 2));  // another attempt
  TaskEntry* assigned = t.Add(pb::TASK_STATUS_ASSIGNED);
  CHECK(IsCurrentAttempt(assigned->task, "w1", 1));
  TaskEntry* done = t.Add(pb::TASK_STATUS_SUCCESS);
  CHECK_FALSE(IsCurrentAttempt(done->task, "w1", 1));  // finished: nothing is current
}

TEST_CASE("Lifecycle: a task waiting for dependencies is accepted but stays pending, the last resolve queues it") {
  Table t;
  TaskEntry* e = t.Add(pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.AwaitDependencies(e, {"task-b", "task-a", "task-b"}).ok());
  CHECK(std::vector<std::string>(e->task.waiting_for().begin(), e->task.waiting_for().end()) ==
        std::vector<std::string>{"task-a", "task-b"});
  // Resolved before the submit is durable: still pending, not queued early.
  absl::StatusOr<pb::TaskStatus> to = t.lifecycle.Resolve(e, "task-a");
  REQUIRE(to.ok());
  CHECK(*to == pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.Accept(e).ok());
  CHECK(e->accepted);
  CHECK(e->task.status() == pb::TASK_STATUS_PENDING);  // durable, waiting for task-b
  CHECK(t.lifecycle.Accept(e).code() == absl::StatusCode::kFailedPrecondition);  // once only
  // A dependency it does not wait for is refused and changes nothing.
  absl::Status s = t.lifecycle.Resolve(e, "task-z").status();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(s.message()), Catch::Contains("not waiting for task-z"));
  CHECK(e->task.waiting_for_size() == 1);
  to = t.lifecycle.Resolve(e, "task-b");
  REQUIRE(to.ok());
  CHECK(*to == pb::TASK_STATUS_QUEUED);
  CHECK(e->task.waiting_for_size() == 0);
  CHECK(t.tasks.count(pb::TASK_STATUS_QUEUED) == 1);
  // Dependencies are set only before the task is accepted.
  CHECK(t.lifecycle.AwaitDependencies(e, {"task-c"}).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Lifecycle: cancel of a waiting task ends its wait, every end is noted once for the graph") {
  Table t;
  TaskEntry* waiting = t.Add(pb::TASK_STATUS_PENDING);
  REQUIRE(t.lifecycle.AwaitDependencies(waiting, {"task-a"}).ok());
  REQUIRE(t.lifecycle.Accept(waiting).ok());
  REQUIRE(t.lifecycle.Cancel(waiting, "dependency task-a ended failed; this task needed ok", kNow).ok());
  CHECK(waiting->task.waiting_for_size() == 0);
  CHECK(waiting->task.status() == pb::TASK_STATUS_CANCELLED);

  TaskEntry* running = t.Add(pb::TASK_STATUS_RUNNING, /*max_retries=*/1);
  REQUIRE(t.lifecycle.RetryOrFail(running, "lost", kNow).ok());  // back to queued: not an end
  TaskEntry* done = t.Add(pb::TASK_STATUS_RUNNING);
  REQUIRE(t.lifecycle.Finish(done, pb::TASK_STATUS_FAILED, "boom", kNow).ok());
  CHECK(t.lifecycle.TakeEnded() == std::vector<std::string>{waiting->task.task_id(), done->task.task_id()});
  CHECK(t.lifecycle.TakeEnded().empty());
  CHECK_FALSE(t.lifecycle.any_ended());
}

TEST_CASE("Lifecycle: the attempt's token hash goes when the attempt ends, however it ends") {
  struct Case {
    const char* name;
    std::function<absl::Status(Table&, TaskEntry*)> end;
    pb::TaskStatus to;
  };
  const std::vector<Case> cases = {
      {"finish", [](Table& t, TaskEntry* e) { return t.lifecycle.Finish(e, pb::TASK_STATUS_SUCCESS, "", kNow); },
       pb::TASK_STATUS_SUCCESS},
      {"retry", [](Table& t, TaskEntry* e) { return t.lifecycle.RetryOrFail(e, "lost", kNow).status(); },
       pb::TASK_STATUS_QUEUED},
      {"hand back", [](Table& t, TaskEntry* e) { return t.lifecycle.HandBack(e, "left", kNow); },
       pb::TASK_STATUS_QUEUED},
      {"cancel", [](Table& t, TaskEntry* e) { return t.lifecycle.Cancel(e, "cancelled by client", kNow); },
       pb::TASK_STATUS_CANCELLED},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Table t;
    TaskEntry* e = t.Add(pb::TASK_STATUS_ASSIGNED);
    e->task.set_attempt_token_sha256(std::string(32, 'h'));
    REQUIRE(t.lifecycle.Start(e, kNow).ok());
    CHECK(e->task.attempt_token_sha256().size() == 32);  // still the running attempt's
    REQUIRE(c.end(t, e).ok());
    CHECK(e->task.status() == c.to);
    CHECK(e->task.attempt_token_sha256().empty());
  }
}

}  // namespace rc::coordinator
