// Retries, drain, recovery from stored records and retention, on the core with a fake
// clock (no RPC). Shares the fixture with coordinator_test.cc.
#include <catch2/catch.hpp>

#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {

TEST_CASE("RetryBackoff doubles from the initial delay up to the cap, scaled by jitter") {
  const absl::Duration i = absl::Seconds(1), max = absl::Seconds(10);
  CHECK(RetryBackoff(1, i, max, 0.0) == absl::Milliseconds(500));
  CHECK(RetryBackoff(1, i, max, 0.999) > absl::Milliseconds(999));
  CHECK(RetryBackoff(2, i, max, 1.0) == absl::Seconds(2));
  CHECK(RetryBackoff(3, i, max, 1.0) == absl::Seconds(4));
  CHECK(RetryBackoff(9, i, max, 1.0) == absl::Seconds(10));
  CHECK(RetryBackoff(1000, i, max, 0.0) == absl::Seconds(5));
}

TEST_CASE("A failing handler is retried with growing backoff, then fails with every attempt recorded") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string id = f.Submit("sleep", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(2);
  });
  for (int attempt = 1; attempt <= 3; ++attempt) {
    REQUIRE(link->assigned.size() == static_cast<size_t>(attempt));
    f.Finish("w1", epoch, link->assigned.back(), pb::TASK_STATUS_FAILED);
    if (attempt < 3) {
      CHECK(f.Get(id).status() == pb::TASK_STATUS_QUEUED);
      f.PassBackoff(absl::Milliseconds(500) * (1 << (attempt - 1)));
    }
  }
  pb::Task t = f.Get(id);
  CHECK(t.status() == pb::TASK_STATUS_FAILED);
  CHECK(t.attempts() == 3);
  CHECK_THAT(t.error_message(), Catch::EndsWith("(attempt 3 of 3; no retries left)"));
  REQUIRE(t.attempt_history_size() == 3);
  // The gaps between attempts are the backoff: 0.5 s, then 1 s.
  CHECK(t.attempt_history(1).assigned_at_ms() - t.attempt_history(0).finished_at_ms() == 500);
  CHECK(t.attempt_history(2).assigned_at_ms() - t.attempt_history(1).finished_at_ms() == 1000);
  for (const pb::Attempt& a : t.attempt_history()) CHECK(a.status() == pb::TASK_STATUS_FAILED);
}

TEST_CASE("Timeout and cancelled are final: no retry") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 2, link);
  std::string timed_out = f.Submit("sleep");
  std::string cancelled = f.Submit("sleep");
  f.Finish("w1", epoch, link->assigned[0], pb::TASK_STATUS_TIMEOUT);
  f.Finish("w1", epoch, link->assigned[1], pb::TASK_STATUS_CANCELLED);
  f.PassBackoff(absl::Seconds(10));
  CHECK(f.Get(timed_out).status() == pb::TASK_STATUS_TIMEOUT);
  CHECK(f.Get(cancelled).status() == pb::TASK_STATUS_CANCELLED);
  CHECK(link->assigned.size() == 2);
}

TEST_CASE("Cancelling a task waiting out its backoff ends it, the retry never runs") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string id = f.Submit("sleep");
  f.Finish("w1", epoch, link->assigned[0], pb::TASK_STATUS_FAILED);
  REQUIRE(f.Cancel(id)->cancelled());
  f.PassBackoff(absl::Seconds(5));
  CHECK(link->assigned.size() == 1);
  CHECK(f.Get(id).status() == pb::TASK_STATUS_CANCELLED);
}

TEST_CASE("Every finished report is acknowledged, applied or not") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  f.Submit("echo");
  f.Finish("w1", epoch, link->assigned[0]);
  f.Finish("w1", epoch, link->assigned[0]);  // a duplicate after a reconnect: ignored, still acked
  REQUIRE(link->acks.size() == 2);
  CHECK(link->acks[1].task_id() == link->assigned[0].task_id());
  CHECK(link->acks[1].attempt() == 1);
}

TEST_CASE("A draining worker gets nothing new, deregister hands its attempts back at once") {
  Fixture f;
  auto w1 = std::make_shared<FakeLink>();
  uint64_t e1 = f.Join("w1", 2, w1);
  std::string running = f.Submit("sleep", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(0);  // a hand-back is not a failure
  });
  pb::WorkerMessage drain;
  drain.set_draining(true);
  f.core.HandleWorkerMessage("w1", e1, drain);
  CHECK(f.core.ListWorkers("w1")[0].status() == pb::WORKER_STATUS_DRAINING);
  std::string later = f.Submit("echo");
  CHECK(w1->assigned.size() == 1);
  CHECK(f.Get(later).unschedulable_reason() == "no worker is connected");

  pb::WorkerMessage leave;
  leave.set_deregister(true);
  f.core.HandleWorkerMessage("w1", e1, leave);
  CHECK(w1->closed.has_value());
  CHECK(f.core.ListWorkers("w1")[0].status() == pb::WORKER_STATUS_OFFLINE);
  pb::Task t = f.Get(running);
  CHECK(t.status() == pb::TASK_STATUS_QUEUED);
  CHECK(t.next_attempt_at_ms() == 0);  // no backoff
  CHECK(t.handed_back() == 1);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_CANCELLED);
  CHECK(t.attempt_history(0).error_message() == "handed back: worker w1 shut down before it finished");

  auto w2 = std::make_shared<FakeLink>();
  uint64_t e2 = f.Join("w2", 2, w2);
  REQUIRE(w2->assigned.size() == 2);  // both at once, oldest first
  CHECK(w2->assigned[0].task_id() == running);
  CHECK(w2->assigned[0].attempt() == 2);
  f.Finish("w2", e2, w2->assigned[0]);
  CHECK(f.Get(running).status() == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("A worker reporting an attempt newer than the store knows keeps it (no attempt number reused)") {
  FakeClock clock;
  MemoryTaskStore store;
  pb::Task t;  // stored as queued after attempt 1, though attempt 2 had been sent to w1
  t.set_task_id("task-1");
  t.set_status(pb::TASK_STATUS_QUEUED);
  t.set_attempts(1);
  t.set_sequence(1);
  t.mutable_spec()->set_task_type("echo");
  t.add_attempt_history()->set_number(1);
  Coordinator c(Fixture::Options(), &store, &clock);
  c.Recover({t});
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  pb::RunningAttempt* r = reg.add_running();
  r->set_task_id("task-1");
  r->set_attempt(2);
  auto link = std::make_shared<FakeLink>();
  REQUIRE(c.RegisterWorker(reg, link).ok());
  CHECK(link->cancels.empty());
  CHECK(link->assigned.empty());
  pb::Task now = *c.GetTask("task-1");
  CHECK(now.status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(now.attempts() == 2);
  CHECK(now.worker_device_id() == "w1");
}

TEST_CASE("Recover rebuilds queue order, idempotency keys and attempts held by workers") {
  FakeClock clock;
  MemoryTaskStore store;
  std::string done_id, held_id, low_id, high_id, keyed_id;
  {
    Coordinator before(Fixture::Options(), &store, &clock);
    auto submit = [&](pb::Priority p, const std::string& key) {
      pb::TaskSpec spec;
      spec.set_task_type("echo");
      spec.set_priority(p);
      spec.set_idempotency_key(key);
      std::string id;
      before.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { id = r->task_id; });
      return id;
    };
    auto link = std::make_shared<FakeLink>();
    pb::Register reg;
    reg.mutable_capabilities()->set_device_id("w1");
    reg.mutable_capabilities()->set_slots(2);
    reg.mutable_capabilities()->add_task_types("echo");
    uint64_t epoch = *before.RegisterWorker(reg, link);
    done_id = submit(pb::PRIORITY_NORMAL, "");
    held_id = submit(pb::PRIORITY_NORMAL, "");
    low_id = submit(pb::PRIORITY_LOW, "");
    high_id = submit(pb::PRIORITY_HIGH, "");
    keyed_id = submit(pb::PRIORITY_NORMAL, "k1");
    pb::WorkerMessage m;
    pb::TaskFinished* fin = m.add_finished();
    fin->set_task_id(done_id);
    fin->set_attempt(1);
    fin->set_status(pb::TASK_STATUS_SUCCESS);
    fin->set_result(R"({"kept":true})");
    before.HandleWorkerMessage("w1", epoch, m);  // done_id finished; held_id still on w1; high next
    // An assignment is written once it has run kAssignmentWriteDelayMs (at a tick).
    clock.Advance(absl::Milliseconds(50));
    before.Tick();
  }
  Coordinator after(Fixture::Options(), &store, &clock);
  after.Recover(*store.LoadAll());
  CHECK(after.GetTask(done_id)->result() == R"({"kept":true})");
  CHECK(after.GetTask(held_id)->status() == pb::TASK_STATUS_ASSIGNED);

  // Same idempotency key after the restart: the same task.
  pb::TaskSpec again;
  again.set_task_type("echo");
  again.set_idempotency_key("k1");
  std::string again_id;
  after.Submit(again, [&](absl::StatusOr<SubmitResult> r) { again_id = r->task_id; });
  CHECK(again_id == keyed_id);

  // w1 comes back still running held_id and high_id's attempt; it keeps them.
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(3);
  reg.mutable_capabilities()->add_task_types("echo");
  for (const std::string& id : {held_id, high_id}) {
    pb::RunningAttempt* r = reg.add_running();
    r->set_task_id(id);
    r->set_attempt(1);
  }
  auto link = std::make_shared<FakeLink>();
  REQUIRE(after.RegisterWorker(reg, link).ok());
  CHECK(link->cancels.empty());
  // Its free slot takes the best queued task: keyed (normal, submitted before low).
  REQUIRE(link->assigned.size() == 1);
  CHECK(link->assigned[0].task_id() == keyed_id);
  CHECK(after.GetTask(low_id)->status() == pb::TASK_STATUS_QUEUED);
}

TEST_CASE("After a restart, attempts whose worker does not return are retried after the grace period") {
  FakeClock clock;
  MemoryTaskStore store;
  pb::Task t;
  t.set_task_id("task-1");
  t.set_status(pb::TASK_STATUS_RUNNING);
  t.set_attempts(1);
  t.set_worker_device_id("gone");
  t.set_sequence(7);
  t.mutable_spec()->set_task_type("echo");
  t.add_attempt_history()->set_number(1);
  Coordinator c(Fixture::Options(), &store, &clock);
  c.Recover({t});
  auto link = std::make_shared<FakeLink>();
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("other");
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  uint64_t epoch = *c.RegisterWorker(reg, link);
  auto advance = [&](absl::Duration d) {
    clock.Advance(d);
    c.HandleWorkerMessage("other", epoch, pb::WorkerMessage());  // "other" stays alive
    c.Tick();
  };
  advance(absl::Seconds(4));
  advance(absl::Seconds(10));
  CHECK(link->assigned.empty());  // workers get restart_grace (15 s) after a restart
  advance(absl::Seconds(2));      // past it
  advance(absl::Seconds(1));      // past the backoff
  REQUIRE(link->assigned.size() == 1);
  CHECK(link->assigned[0].attempt() == 2);
  // New submissions continue the sequence after recovered ones.
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  std::string id;
  c.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { id = r->task_id; });
  CHECK(c.GetTask(id)->sequence() == 8);
}

TEST_CASE("Retention prunes finished tasks older than the limit, from memory and the store") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string old_id = f.Submit("echo");
  f.Finish("w1", epoch, link->assigned[0]);
  f.clock.Advance(absl::Hours(24 * 7) - absl::Minutes(1));
  f.Join("w1", 1, link);  // stay online across the jump
  std::string queued = f.Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->add_required_tags("nobody");
  });
  f.PassBackoff(absl::Minutes(2));
  CHECK(f.core.GetTask(old_id).status().code() == absl::StatusCode::kNotFound);
  CHECK(f.core.GetTask(queued).ok());  // unfinished tasks are never pruned
  auto stored = f.store.LoadAll();
  REQUIRE(stored->size() == 1);
  CHECK((*stored)[0].task_id() == queued);
}

}  // namespace rc::coordinator
