#include <catch2/catch.hpp>

#include "absl/synchronization/notification.h"
#include "tests/unit/event_recorder.h"
#include "worker/execution/executor.h"

namespace rc::worker {
namespace {

pb::Assignment Task(const std::string& id, const std::string& type, const std::string& payload, double timeout = 30) {
  pb::Assignment a;
  a.set_task_id(id);
  a.set_attempt(1);
  a.set_task_type(type);
  a.set_payload(payload);
  a.set_timeout_seconds(timeout);
  return a;
}

struct Fixture {
  HandlerRegistry handlers;
  Recorder events;
  std::unique_ptr<Executor> executor;
  explicit Fixture(int slots, pb::Capabilities capabilities = pb::Capabilities()) {
    AddBuiltinHandlers(&handlers);
    executor = std::make_unique<Executor>(slots, &handlers, &events, std::move(capabilities));
  }
};

}  // namespace

TEST_CASE("echo returns its payload, an unknown type fails naming it") {
  Fixture f(2);
  f.executor->Assign(Task("t1", "echo", R"({"x":1})"));
  f.executor->Assign(Task("t2", "command", "{}"));
  REQUIRE(f.events.WaitFinished(2));
  absl::MutexLock lock(&f.events.mu);
  for (const auto& e : f.events.finished) {
    if (e.task_id() == "t1") {
      CHECK(e.status() == pb::TASK_STATUS_SUCCESS);
      CHECK(e.result() == R"({"x":1})");
    } else {
      CHECK(e.status() == pb::TASK_STATUS_FAILED);
      CHECK(e.error_message() == "this worker does not run task type 'command'");
    }
  }
}

TEST_CASE("A worker restricted to some submitters refuses another's task even if assigned") {
  pb::Capabilities caps;
  caps.add_accepted_submitters("alice");
  Fixture f(2, caps);
  pb::Assignment mine = Task("t1", "echo", "{}");
  mine.set_owner("alice");
  pb::Assignment theirs = Task("t2", "echo", "{}");
  theirs.set_owner("bob");
  f.executor->Assign(mine);
  f.executor->Assign(theirs);
  REQUIRE(f.events.WaitFinished(2));
  absl::MutexLock lock(&f.events.mu);
  for (const auto& e : f.events.finished) {
    if (e.task_id() == "t1") {
      CHECK(e.status() == pb::TASK_STATUS_SUCCESS);
    } else {
      CHECK(e.status() == pb::TASK_STATUS_FAILED);
      CHECK(e.error_message() == "this worker runs only tasks of submitters alice, not of 'bob'");
    }
  }
}

TEST_CASE("Cancel stops a running sleep promptly") {
  Fixture f(1);
  absl::Time start = absl::Now();
  f.executor->Assign(Task("t1", "sleep", R"({"duration": 30})"));
  for (int i = 0; i < 500 && f.executor->running() == 0; ++i) absl::SleepFor(absl::Milliseconds(2));
  f.executor->Cancel("t1", 2);  // wrong attempt: ignored
  f.executor->Cancel("t1", 1);
  REQUIRE(f.events.WaitFinished(1));
  CHECK(absl::Now() - start < absl::Seconds(2));
  absl::MutexLock lock(&f.events.mu);
  CHECK(f.events.finished[0].status() == pb::TASK_STATUS_CANCELLED);
}

TEST_CASE("A sleep past its timeout ends TIMEOUT at the deadline") {
  Fixture f(1);
  f.executor->Assign(Task("t1", "sleep", R"({"duration": 30})", 0.2));
  REQUIRE(f.events.WaitFinished(1));
  absl::MutexLock lock(&f.events.mu);
  const auto& e = f.events.finished[0];
  CHECK(e.status() == pb::TASK_STATUS_TIMEOUT);
  CHECK(e.error_message() == "timed out after 0.2s");
  CHECK(e.execution_time_seconds() >= 0.19);
  CHECK(e.execution_time_seconds() < 1.5);
}

TEST_CASE("sleep names a bad duration") {
  Fixture f(1);
  f.executor->Assign(Task("t1", "sleep", R"({"duration": "long"})"));
  REQUIRE(f.events.WaitFinished(1));
  absl::MutexLock lock(&f.events.mu);
  CHECK(f.events.finished[0].status() == pb::TASK_STATUS_FAILED);
  CHECK(f.events.finished[0].error_message() == "payload.duration: required, a number of seconds");
}

TEST_CASE("A cancel of a queued attempt reports it at once, held attempts are listed") {
  Fixture f(1);
  f.executor->Assign(Task("busy", "sleep", R"({"duration": 30})"));
  f.executor->Assign(Task("waiting", "sleep", R"({"duration": 0})"));
  f.executor->Assign(Task("waiting", "sleep", R"({"duration": 0})"));  // a duplicate of a held attempt is ignored
  CHECK(f.executor->HeldAttempts().size() == 2);
  f.executor->Cancel("waiting", 1);
  REQUIRE(f.events.WaitFinished(1));
  {
    absl::MutexLock lock(&f.events.mu);
    CHECK(f.events.finished[0].task_id() == "waiting");
    CHECK(f.events.finished[0].status() == pb::TASK_STATUS_CANCELLED);
  }
  f.executor->Stop();  // stops "busy" without reporting it
  absl::MutexLock lock(&f.events.mu);
  CHECK(f.events.finished.size() == 1);
}


namespace rc::worker {

TEST_CASE("A newer attempt of a task runs beside an older one that is still stopping") {
  Fixture f(2);
  f.executor->Assign(Task("t1", "sleep", R"({"duration": 30})"));
  pb::Assignment second = Task("t1", "echo", R"({"attempt":2})");
  second.set_attempt(2);
  f.executor->Assign(second);
  REQUIRE(f.events.WaitFinished(1));
  {
    absl::MutexLock lock(&f.events.mu);
    CHECK(f.events.finished[0].attempt() == 2);
    CHECK(f.events.finished[0].status() == pb::TASK_STATUS_SUCCESS);
  }
  f.executor->Cancel("t1", 1);
  REQUIRE(f.events.WaitFinished(2));
  absl::MutexLock lock(&f.events.mu);
  CHECK(f.events.finished.size() == 2);
  CHECK(f.events.finished[1].status() == pb::TASK_STATUS_CANCELLED);
}

}  // namespace rc::worker

TEST_CASE("An instant handler (echo) runs on the assigning thread, even with every slot busy") {
  Fixture f(1);
  f.executor->Assign(Task("busy", "sleep", R"({"duration": 30})"));
  f.executor->Assign(Task("quick", "echo", R"({"x": 1})"));
  {
    // Already reported when Assign returned: no slot thread was involved.
    absl::MutexLock lock(&f.events.mu);
    REQUIRE(f.events.finished.size() == 1);
    CHECK(f.events.finished[0].task_id() == "quick");
    CHECK(f.events.finished[0].status() == pb::TASK_STATUS_SUCCESS);
    CHECK(f.events.finished[0].result() == R"({"x": 1})");
  }
  CHECK(f.executor->HeldAttempts().size() == 1);  // only "busy"
  f.executor->Stop();
}

}  // namespace rc::worker
