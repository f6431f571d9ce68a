// The coordinator core without RPC: fake clock, fake worker links.
#include <catch2/catch.hpp>

#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {

TEST_CASE("With one slot, queued tasks are assigned by priority, then FIFO") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string first = f.Submit("echo");
  std::string low = f.Submit("echo", pb::PRIORITY_LOW);
  std::string n1 = f.Submit("echo", pb::PRIORITY_NORMAL);
  std::string urgent = f.Submit("sleep", pb::PRIORITY_URGENT);  // another class
  std::string n2 = f.Submit("echo", pb::PRIORITY_NORMAL);
  std::string high = f.Submit("echo", pb::PRIORITY_HIGH);
  REQUIRE(link->assigned.size() == 1);
  CHECK(link->assigned[0].task_id() == first);
  for (int i = 0; i < 5; ++i) f.Finish("w1", epoch, link->assigned[i]);
  std::vector<std::string> order;
  for (const auto& a : link->assigned) order.push_back(a.task_id());
  CHECK(order == std::vector<std::string>{first, urgent, high, n1, n2, low});
  CHECK(f.Get(first).status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.Get(low).status() == pb::TASK_STATUS_ASSIGNED);
}

TEST_CASE("An unschedulable urgent task does not block others, says why, and can be cancelled") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 1, link);
  std::string urgent = f.Submit("echo", pb::PRIORITY_URGENT, [](pb::TaskSpec* s) {
    s->mutable_requirements()->add_required_tags("gpu-box");
  });
  std::string normal = f.Submit("echo");
  REQUIRE(link->assigned.size() == 1);
  CHECK(link->assigned[0].task_id() == normal);
  pb::Task t = f.Get(urgent);
  CHECK(t.status() == pb::TASK_STATUS_QUEUED);
  CHECK(t.unschedulable_reason() == "no connected worker can run it: w1 lacks tag 'gpu-box'");

  auto cancel = f.Cancel(urgent);
  REQUIRE(cancel.ok());
  CHECK(cancel->cancelled());
  CHECK(f.Get(urgent).status() == pb::TASK_STATUS_CANCELLED);
  CHECK(f.core.Stats().queued_by_priority().at("urgent") == 0);
}

TEST_CASE("The unschedulable reason clears when a capable worker joins, and the task runs there") {
  Fixture f;
  auto w1 = std::make_shared<FakeLink>();
  f.Join("w1", 2, w1);
  std::string id = f.Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->add_required_tags("gpu-box");
  });
  CHECK_FALSE(f.Get(id).unschedulable_reason().empty());
  auto w2 = std::make_shared<FakeLink>();
  f.Join("w2", 1, w2, {"gpu-box"});
  REQUIRE(w2->assigned.size() == 1);
  CHECK(w2->assigned[0].task_id() == id);
  CHECK(f.Get(id).unschedulable_reason().empty());
  CHECK(w1->assigned.empty());
}

TEST_CASE("Cancelling a running task tells its worker and keeps the slot until it stops") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string running = f.Submit("sleep");
  std::string next = f.Submit("echo");
  REQUIRE(link->assigned.size() == 1);
  REQUIRE(f.Cancel(running)->cancelled());
  CHECK(f.Get(running).status() == pb::TASK_STATUS_CANCELLED);
  REQUIRE(link->cancels.size() == 1);
  CHECK(link->cancels[0].task_id() == running);
  CHECK(link->assigned.size() == 1);  // slot still reserved
  f.Finish("w1", epoch, link->assigned[0], pb::TASK_STATUS_CANCELLED);
  REQUIRE(link->assigned.size() == 2);
  CHECK(link->assigned[1].task_id() == next);
  CHECK(f.Get(running).status() == pb::TASK_STATUS_CANCELLED);
  CHECK_FALSE(f.Cancel(running)->cancelled());  // already finished
}

TEST_CASE("Results from a replaced connection or a stale attempt are ignored") {
  Fixture f;
  auto old_link = std::make_shared<FakeLink>();
  uint64_t old_epoch = f.Join("w1", 1, old_link);
  std::string id = f.Submit("echo");
  REQUIRE(old_link->assigned.size() == 1);
  pb::Assignment a = old_link->assigned[0];
  // Same device reconnects without the attempt: the task goes back as attempt 2.
  auto new_link = std::make_shared<FakeLink>();
  uint64_t new_epoch = f.Join("w1", 1, new_link);
  CHECK(old_link->closed.has_value());
  CHECK(new_link->assigned.empty());  // waits out the retry backoff
  f.PassBackoff();
  REQUIRE(new_link->assigned.size() == 1);
  CHECK(new_link->assigned[0].attempt() == 2);
  f.Finish("w1", old_epoch, a);  // old connection: fenced
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  f.Finish("w1", new_epoch, a);  // new connection, stale attempt: fenced
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  f.Finish("w1", new_epoch, new_link->assigned[0]);
  pb::Task t = f.Get(id);
  CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t.attempts() == 2);
  REQUIRE(t.attempt_history_size() == 2);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_FAILED);
  CHECK(f.core.ListWorkers("").size() == 1);
}

TEST_CASE("A worker that stops heartbeating goes offline and its task runs elsewhere") {
  Fixture f;
  auto w1 = std::make_shared<FakeLink>();
  uint64_t e1 = f.Join("w1", 1, w1);
  std::string id = f.Submit("sleep");
  REQUIRE(w1->assigned.size() == 1);
  auto w2 = std::make_shared<FakeLink>();
  uint64_t e2 = f.Join("w2", 1, w2);
  f.clock.Advance(absl::Seconds(3));
  f.core.HandleWorkerMessage("w2", e2, pb::WorkerMessage());  // w2 heartbeats
  f.core.Tick();
  CHECK(w2->assigned.empty());
  f.clock.Advance(absl::Seconds(3));  // w1 silent for 6 s > 5 s
  f.core.Tick();
  CHECK(w1->closed.has_value());
  CHECK(f.Get(id).status() == pb::TASK_STATUS_QUEUED);
  CHECK(f.Get(id).next_attempt_at_ms() == f.clock.NowMs() + 500);
  f.PassBackoff(absl::Milliseconds(499));
  CHECK(w2->assigned.empty());
  f.PassBackoff(absl::Milliseconds(1));
  REQUIRE(w2->assigned.size() == 1);
  CHECK(w2->assigned[0].task_id() == id);
  f.Finish("w1", e1, w1->assigned[0]);  // a late result from the lost worker: fenced
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(f.core.ListWorkers("w1")[0].status() == pb::WORKER_STATUS_OFFLINE);
}

TEST_CASE("A worker that reconnects within the grace period keeps its running attempt") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string id = f.Submit("sleep");
  pb::Assignment a = link->assigned.at(0);
  f.core.WorkerDisconnected("w1", epoch);
  f.clock.Advance(absl::Seconds(2));
  f.core.Tick();
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  pb::RunningAttempt r;
  r.set_task_id(id);
  r.set_attempt(a.attempt());
  auto again = std::make_shared<FakeLink>();
  uint64_t e2 = f.Join("w1", 1, again, {}, {r});
  CHECK(again->assigned.empty());
  CHECK(again->cancels.empty());
  f.Finish("w1", e2, a);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.Get(id).attempts() == 1);
}

TEST_CASE("A lost worker's task past max_retries fails with the reason") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string id = f.Submit("sleep", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(0);
  });
  f.core.WorkerDisconnected("w1", epoch);
  f.clock.Advance(absl::Seconds(6));
  f.core.Tick();
  pb::Task t = f.Get(id);
  CHECK(t.status() == pb::TASK_STATUS_FAILED);
  CHECK(t.error_message() == "worker w1 disconnected and did not return within 5.0s (attempt 1 of 1; no retries left)");
}

TEST_CASE("A repeated idempotency key returns the first task") {
  Fixture f;
  auto edit = [](pb::TaskSpec* s) { s->set_idempotency_key("job-42"); };
  std::string a = f.Submit("echo", pb::PRIORITY_NORMAL, edit);
  bool existing = false;
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  spec.set_idempotency_key("job-42");
  std::string b;
  f.core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) {
    b = r->task_id;
    existing = r->existing;
  });
  CHECK(a == b);
  CHECK(existing);
  CHECK(f.core.ListTasks(TaskFilter{})->size() == 1);
}

TEST_CASE("Stats count tasks by status and slots of online workers") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 2, link);
  f.Submit("echo");
  f.Submit("echo");
  f.Submit("echo", pb::PRIORITY_HIGH);
  f.Finish("w1", epoch, link->assigned[0]);
  pb::Stats s = f.core.Stats();
  CHECK(s.online_devices() == 1);
  CHECK(s.total_slots() == 2);
  CHECK(s.busy_slots() == 2);
  CHECK(s.tasks().at("success") == 1);
  CHECK(s.tasks().at("assigned") == 2);
  CHECK(s.tasks_scheduled() == 3);
  CHECK(s.tasks_succeeded() == 1);
}

}  // namespace rc::coordinator

namespace rc::coordinator {

TEST_CASE("A late report for a requeued attempt neither finishes the task nor leaks a slot") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 1, link);
  std::string id = f.Submit("sleep");
  pb::Assignment a1 = link->assigned.at(0);
  f.clock.Advance(absl::Seconds(6));
  f.core.Tick();  // w1 silent: offline, task requeued
  CHECK(f.Get(id).status() == pb::TASK_STATUS_QUEUED);
  CHECK(f.Get(id).worker_device_id().empty());

  // w1 comes back still holding attempt 1: told to stop it; its one slot stays reserved.
  pb::RunningAttempt held;
  held.set_task_id(id);
  held.set_attempt(1);
  auto again = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, again, {}, {held});
  REQUIRE(again->cancels.size() == 1);
  // Its (successful) result for attempt 1 arrives late: ignored, slot released.
  f.Finish("w1", epoch, a1, pb::TASK_STATUS_SUCCESS);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_QUEUED);
  CHECK(f.core.Stats().busy_slots() == 0);
  f.PassBackoff();
  REQUIRE(again->assigned.size() == 1);
  CHECK(again->assigned[0].attempt() == 2);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  f.Finish("w1", epoch, again->assigned[0]);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.Get(id).attempts() == 2);
  CHECK(f.core.Stats().busy_slots() == 0);
}

TEST_CASE("A new attempt may land beside an old one still stopping on the same worker") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 2, link);
  std::string id = f.Submit("sleep");
  pb::Assignment a1 = link->assigned.at(0);
  f.clock.Advance(absl::Seconds(6));
  f.core.Tick();
  pb::RunningAttempt held;
  held.set_task_id(id);
  held.set_attempt(1);
  auto again = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 2, again, {}, {held});
  REQUIRE(again->cancels.size() == 1);
  f.PassBackoff();
  REQUIRE(again->assigned.size() == 1);  // attempt 2 takes the second slot
  CHECK(f.core.Stats().busy_slots() == 2);
  f.Finish("w1", epoch, a1, pb::TASK_STATUS_CANCELLED);  // attempt 1 stopped: slot freed, task untouched
  CHECK(f.core.Stats().busy_slots() == 1);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_ASSIGNED);
  f.Finish("w1", epoch, again->assigned[0]);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.core.Stats().busy_slots() == 0);
}

TEST_CASE("Cancelling a requeued task keeps the lost attempt's record") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 1, link);
  std::string id = f.Submit("sleep");
  f.clock.Advance(absl::Seconds(6));
  f.core.Tick();
  REQUIRE(f.Cancel(id)->cancelled());
  pb::Task t = f.Get(id);
  REQUIRE(t.attempt_history_size() == 1);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(t.attempt_history(0).error_message(), Catch::Contains("no heartbeat"));
}

}  // namespace rc::coordinator

namespace rc::coordinator {

TEST_CASE("CheckLiveness: silent when connected without heartbeats, grace expiry only with attempts held") {
  WorkerEntry w;
  w.link = std::make_shared<FakeLink>();
  w.last_heartbeat_ms = 10'000;
  const absl::Duration offline = absl::Seconds(5), grace = absl::Seconds(3);
  CHECK(CheckLiveness(w, 15'000, offline, grace) == Liveness::kFine);
  CHECK(CheckLiveness(w, 15'001, offline, grace) == Liveness::kSilent);
  w.link = nullptr;
  w.disconnected_at_ms = 20'000;
  CHECK(CheckLiveness(w, 30'000, offline, grace) == Liveness::kFine);  // holds nothing
  w.running.emplace("task-1", 1);
  CHECK(CheckLiveness(w, 22'999, offline, grace) == Liveness::kFine);
  CHECK(CheckLiveness(w, 23'000, offline, grace) == Liveness::kGraceExpired);
}

TEST_CASE("CheckLiveness counts what the connection's reader stamped without the lock") {
  WorkerEntry w;
  w.link = std::make_shared<FakeLink>();
  w.last_heartbeat_ms = 10'000;
  w.heard = std::make_shared<Heard>();
  const absl::Duration offline = absl::Seconds(5), grace = absl::Seconds(3);
  CHECK(CheckLiveness(w, 15'001, offline, grace) == Liveness::kSilent);
  w.heard->at_ms = 14'000;  // a heartbeat-only message, never handled under the lock
  CHECK(LastHeardMs(w) == 14'000);
  CHECK(CheckLiveness(w, 19'000, offline, grace) == Liveness::kFine);
  CHECK(CheckLiveness(w, 19'001, offline, grace) == Liveness::kSilent);
}

}  // namespace rc::coordinator
