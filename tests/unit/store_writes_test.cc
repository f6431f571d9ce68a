// Which changes of a task are written (issue 18): its submit and its end always; its
// acceptance and its start never (recovery derives both); its assignment with its submit
// when a worker is free and nothing waits in line (placed), else at once when the store
// has nothing in flight, else only once it has run kAssignmentWriteDelayMs, or when the
// task acts with its token.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "coordinator/core/task_tokens.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

// A MemoryTaskStore that remembers every record written, in order, and holds commits
// while `hold` is set (until Release).
class RecordingStore final : public TaskStore {
 public:
  void Write(std::vector<TaskRecord> tasks, std::function<void(absl::Status)> done) override {
    for (const TaskRecord& t : tasks) written[t.task_id].push_back(t.status);
    if (hold) {
      held.emplace_back(std::move(tasks), std::move(done));
      return;
    }
    inner.Write(std::move(tasks), std::move(done));
  }
  // Commits what was held, or fails it with `error`.
  void Release(const absl::Status& error = absl::OkStatus()) {
    hold = false;
    auto now = std::move(held);
    for (auto& [tasks, done] : now) {
      if (error.ok()) {
        inner.Write(std::move(tasks), std::move(done));
      } else {
        done(error);
      }
    }
  }
  void Delete(std::vector<std::string> ids, std::function<void(absl::Status)> done) override {
    inner.Delete(std::move(ids), std::move(done));
  }
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override { return inner.LoadAll(); }

  MemoryTaskStore inner;
  std::map<std::string, std::vector<pb::TaskStatus>> written;
  bool hold = false;
  std::vector<std::pair<std::vector<TaskRecord>, std::function<void(absl::Status)>>> held;
};

struct Setup {
  FakeClock clock;
  RecordingStore store;
  Coordinator core{Fixture::Options(), &store, &clock};
  std::shared_ptr<FakeLink> link = std::make_shared<FakeLink>();
  int slots = 4;
  uint64_t epoch = 0;
  std::string first;
  bool second_ok = false;

  // `id` is assigned while a write is in flight (the store busy): its assignment waits.
  explicit Setup(bool busy_dispatch = true, int slots = 4) : slots(slots) {
    if (!busy_dispatch) {
      Join();
      return;
    }
    first = Submit();  // queued: no worker yet
    store.hold = true;
    pb::TaskSpec spec;  // in flight while the worker joins and gets `first` (answered at Release)
    spec.set_task_type("echo");
    core.Submit(spec, [this](absl::StatusOr<SubmitResult> r) { second_ok = r.ok(); });
    Join();
    store.Release();
    REQUIRE(second_ok);
  }
  void Join() {
    pb::Register reg;
    reg.mutable_capabilities()->set_device_id("w1");
    reg.mutable_capabilities()->set_slots(slots);
    reg.mutable_capabilities()->add_task_types("echo");
    epoch = *core.RegisterWorker(reg, link);
  }
  std::string Submit(const Submitter& by = Submitter(), const std::string& type = "echo") {
    pb::TaskSpec spec;
    spec.set_task_type(type);
    std::string id;
    core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) {
      REQUIRE(r.ok());
      id = r->task_id;
    }, by);
    return id;
  }
  void Started(const pb::Assignment& a) {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(a.task_id());
    s->set_attempt(a.attempt());
    core.HandleWorkerMessage("w1", epoch, m);
  }
  void Finished(const pb::Assignment& a) {
    pb::WorkerMessage m;
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(a.task_id());
    f->set_attempt(a.attempt());
    f->set_status(pb::TASK_STATUS_SUCCESS);
    core.HandleWorkerMessage("w1", epoch, m);
  }
  void Tick(absl::Duration after) {
    clock.Advance(after);
    core.Tick();
  }
};

using Statuses = std::vector<pb::TaskStatus>;

TEST_CASE("A task that ends soon after its assignment is written twice: its submit and its end") {
  Setup s;
  const std::string id = s.first;
  REQUIRE(s.link->assigned.size() == 2);
  REQUIRE(s.link->assigned[0].task_id() == id);
  s.Started(s.link->assigned[0]);
  s.Tick(absl::Milliseconds(49));  // not yet due
  s.Finished(s.link->assigned[0]);
  s.Tick(absl::Seconds(1));  // nothing left to write for it
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_PENDING, pb::TASK_STATUS_SUCCESS});
  CHECK((*s.store.inner.Get(id))->status() == pb::TASK_STATUS_SUCCESS);
  s.core.Shutdown();
}

TEST_CASE("An attempt still running 50 ms after its assignment is written at the next tick, once") {
  Setup s;
  const std::string id = s.first;
  REQUIRE(s.link->assigned.size() == 2);
  REQUIRE(s.link->assigned[0].task_id() == id);
  const pb::Assignment a = s.link->assigned[0];
  s.Started(a);
  s.Tick(absl::Milliseconds(20));
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_PENDING});
  s.Tick(absl::Milliseconds(30));
  // Written as it is then (RUNNING), with the token's digest that a restart needs.
  REQUIRE(s.store.written[id] == Statuses{pb::TASK_STATUS_PENDING, pb::TASK_STATUS_RUNNING});
  const pb::Task stored = **s.store.inner.Get(id);
  CHECK(stored.attempts() == 1);
  CHECK(stored.worker_device_id() == "w1");
  CHECK(stored.attempt_token_sha256() == TaskTokenSha256(a.task_token()));
  s.Tick(absl::Seconds(1));
  CHECK(s.store.written[id].size() == 2);
  s.Finished(a);
  CHECK(s.store.written[id].back() == pb::TASK_STATUS_SUCCESS);
  s.core.Shutdown();
}

TEST_CASE("A running task submitting a child has its assignment written with the child") {
  Setup s;
  const std::string parent = s.first;
  REQUIRE(s.link->assigned.size() == 2);
  REQUIRE(s.link->assigned[0].task_id() == parent);
  Submitter by;
  by.parent_task_id = parent;
  const std::string child = s.Submit(by);
  REQUIRE(s.store.written[parent].size() == 2);
  CHECK(s.store.written[parent][1] == pb::TASK_STATUS_ASSIGNED);
  CHECK(s.store.written[child].front() == pb::TASK_STATUS_PENDING);
  // Its token survives a restart now, although the delay has not passed.
  Coordinator restarted(Fixture::Options(), &s.store, &s.clock);
  REQUIRE(restarted.RecoverFromStore().ok());
  CHECK(restarted.CheckTaskToken(s.link->assigned[0].task_token()).ok());
  restarted.Shutdown();
  s.core.Shutdown();
}

TEST_CASE("A crash before the assignment is written: the task recovers queued and its worker's report adopts it") {
  Setup s;
  const std::string id = s.first;
  REQUIRE(s.link->assigned.size() == 2);
  REQUIRE(s.link->assigned[0].task_id() == id);
  const pb::Assignment a = s.link->assigned[0];
  CHECK((*s.store.inner.Get(id))->status() == pb::TASK_STATUS_PENDING);
  REQUIRE(s.link->assigned[1].task_id() != id);

  Coordinator restarted(Fixture::Options(), &s.store, &s.clock);
  REQUIRE(restarted.RecoverFromStore().ok());
  CHECK(restarted.GetTask(id)->status() == pb::TASK_STATUS_QUEUED);
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(4);
  reg.mutable_capabilities()->add_task_types("echo");
  pb::RunningAttempt* r = reg.add_running();
  r->set_task_id(id);
  r->set_attempt(1);
  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = *restarted.RegisterWorker(reg, link);
  CHECK(restarted.GetTask(id)->status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(restarted.GetTask(id)->attempts() == 1);
  for (const pb::Assignment& other : link->assigned) CHECK(other.task_id() != id);  // not run twice
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(id);
  f->set_attempt(1);
  f->set_status(pb::TASK_STATUS_SUCCESS);
  f->set_result("kept");
  restarted.HandleWorkerMessage("w1", epoch, m);
  CHECK(restarted.GetTask(id)->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(restarted.GetTask(id)->result() == "kept");
  restarted.Shutdown();
  s.core.Shutdown();
}

TEST_CASE("On a quiet store an assignment is written at once, so its outcome may reach waiters before its commit") {
  Setup s(/*busy_dispatch=*/false, /*slots=*/1);
  const std::string busy = s.Submit();  // placed: the worker's one slot is taken
  const std::string id = s.Submit();    // so this one waits in line, not placed
  s.Finished(s.link->assigned.at(0));   // the slot frees: `id` is dispatched the usual way
  REQUIRE(s.link->assigned.size() == 2);
  CHECK(s.link->assigned[1].task_id() == id);
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_PENDING, pb::TASK_STATUS_ASSIGNED});
  s.Started(s.link->assigned[1]);
  s.Finished(s.link->assigned[1]);
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_PENDING, pb::TASK_STATUS_ASSIGNED, pb::TASK_STATUS_SUCCESS});
  CHECK(s.store.written[busy] == Statuses{pb::TASK_STATUS_ASSIGNED, pb::TASK_STATUS_SUCCESS});
  s.core.Shutdown();
}

TEST_CASE("A task in line that no free worker can run does not keep a new submit from being placed") {
  Setup s(/*busy_dispatch=*/false);
  const std::string waiting = s.Submit("", "gpu");  // no worker runs it: it waits in line
  const std::string id = s.Submit();                // w1 is free and can run it: placed
  REQUIRE(s.link->assigned.size() == 1);
  CHECK(s.link->assigned[0].task_id() == id);
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_ASSIGNED});  // one write, the submit's
  CHECK(s.core.GetTask(waiting)->status() == pb::TASK_STATUS_QUEUED);
  s.core.Shutdown();
}

// The outcomes a waiter saw.
class Ends final : public TaskSink {
 public:
  void OnTask(pb::Task t) override { seen.push_back(std::move(t)); }
  void Abort(absl::Status) override {}
  bool TerminalOnly() const override { return true; }
  std::vector<pb::Task> seen;
};

// What a submit answered, when it did.
struct Answer {
  bool answered = false;
  absl::StatusOr<SubmitResult> result = absl::UnknownError("not answered");
};

// A new submit goes to the worker at once: a slot is free for it.
void NextIsPlaced(Setup& s) {
  const size_t before = s.link->assigned.size();
  const std::string next = s.Submit();
  REQUIRE(s.link->assigned.size() == before + 1);
  CHECK(s.link->assigned.back().task_id() == next);
}

// A submit whose commit the store holds until Release. With an idempotency key a task
// placed with its submit reaches its worker after that commit; without one, at once.
std::string SubmitHeld(Setup& s, Answer* answer, const std::string& key = "key-1") {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  spec.set_idempotency_key(key);
  s.store.hold = true;
  s.core.Submit(spec, [answer](absl::StatusOr<SubmitResult> r) {
    answer->answered = true;
    answer->result = std::move(r);
  });
  REQUIRE(s.store.held.size() == 1);
  REQUIRE(s.store.held[0].first.size() == 1);
  return s.store.held[0].first[0].task_id;
}

TEST_CASE("A keyed submit with a free worker is stored assigned in one write, and the worker gets it once that is durable") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer);
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_ASSIGNED});
  const pb::Task record = *ParseRecord(s.store.held[0].first[0]);  // a copy: Release moves it on
  CHECK(record.attempts() == 1);
  CHECK(record.worker_device_id() == "w1");
  CHECK_FALSE(record.attempt_token_sha256().empty());  // a restart can check its token
  CHECK(s.link->assigned.empty());                     // keyed: nothing unacknowledged runs
  CHECK_FALSE(answer.answered);
  s.store.Release();
  REQUIRE(answer.answered);
  REQUIRE(answer.result.ok());
  CHECK(answer.result->status == pb::TASK_STATUS_ASSIGNED);
  REQUIRE(s.link->assigned.size() == 1);
  const pb::Assignment a = s.link->assigned[0];
  CHECK(a.task_id() == id);
  CHECK(a.attempt() == 1);
  CHECK(TaskTokenSha256(a.task_token()) == record.attempt_token_sha256());

  // Its outcome reaches a waiter before its own commit: the attempt is durable already.
  auto waiter = std::make_shared<Ends>();
  REQUIRE(s.core.Watch(id, waiter).ok());
  s.store.hold = true;
  s.Finished(a);
  REQUIRE(waiter->seen.size() == 1);
  CHECK(waiter->seen[0].status() == pb::TASK_STATUS_SUCCESS);
  s.store.Release();
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_ASSIGNED, pb::TASK_STATUS_SUCCESS});
  s.core.Shutdown();
}

TEST_CASE("A keyed placed submit whose write fails is forgotten, never reaches its worker, and frees the slot") {
  Setup s(/*busy_dispatch=*/false, /*slots=*/1);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer);
  s.store.Release(absl::UnavailableError("disk full"));
  REQUIRE(answer.answered);
  CHECK(answer.result.status().code() == absl::StatusCode::kUnavailable);
  CHECK(s.link->assigned.empty());
  CHECK_FALSE(s.core.GetTask(id).ok());
  NextIsPlaced(s);  // the one slot is free again
  s.core.Shutdown();
}

TEST_CASE("A keyed placed submit cancelled before its commit never reaches its worker, and frees the slot") {
  Setup s(/*busy_dispatch=*/false, /*slots=*/1);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer);
  bool cancelled = false;
  s.core.Cancel(id, [&](absl::StatusOr<pb::CancelTaskResponse> r) { cancelled = r.ok() && r->cancelled(); });
  s.store.Release();
  CHECK(cancelled);
  REQUIRE(answer.answered);
  CHECK(answer.result->status == pb::TASK_STATUS_CANCELLED);
  CHECK(s.link->assigned.empty());
  CHECK(s.link->cancels.empty());  // the worker never heard of it
  CHECK(s.core.GetTask(id)->status() == pb::TASK_STATUS_CANCELLED);
  NextIsPlaced(s);
  s.core.Shutdown();
}

TEST_CASE("A worker that reconnects before a keyed placed submit's commit gets it on its new connection") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer);
  auto old_link = s.link;
  s.link = std::make_shared<FakeLink>();
  s.Join();  // reports no running attempt: the placed one is not lost
  s.store.Release();
  CHECK(old_link->assigned.empty());
  REQUIRE(s.link->assigned.size() == 1);
  CHECK(s.link->assigned[0].task_id() == id);
  CHECK(s.core.GetTask(id)->attempts() == 1);
  s.core.Shutdown();
}

TEST_CASE("A worker that leaves before a keyed placed submit's commit: the task goes back in line, no retry used") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer);
  s.core.WorkerDisconnected("w1", s.epoch);
  s.store.Release();
  REQUIRE(answer.answered);
  REQUIRE(answer.result.ok());
  CHECK(s.link->assigned.empty());
  const pb::Task t = *s.core.GetTask(id);
  CHECK(t.status() == pb::TASK_STATUS_QUEUED);
  CHECK(t.attempt_history_size() == 1);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_CANCELLED);  // handed back, not failed
  s.core.Shutdown();
}

// An unkeyed submit placed on the free worker: sent to it before its commit (held).
std::string SubmitSentEarly(Setup& s, Answer* answer) {
  const std::string id = SubmitHeld(s, answer, /*key=*/"");
  REQUIRE(s.link->assigned.size() == 1);
  REQUIRE(s.link->assigned[0].task_id() == id);
  return id;
}

// A worker's report on a task it was sent before the submit's commit.
void Reports(Setup& s, const pb::Assignment& a, pb::TaskStatus status) {
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(a.task_id());
  f->set_attempt(a.attempt());
  f->set_status(status);
  f->set_result("{\"n\":1}");
  s.core.HandleWorkerMessage("w1", s.epoch, m);
}

TEST_CASE("An unkeyed submit with a free worker runs while it commits, and its outcome waits for that commit") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string id = SubmitHeld(s, &answer, /*key=*/"");
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_ASSIGNED});  // submit and assignment, one write
  REQUIRE(s.link->assigned.size() == 1);  // sent with the submit, before its commit
  const pb::Assignment a = s.link->assigned[0];
  CHECK(a.task_id() == id);
  CHECK(a.attempt() == 1);
  auto waiter = std::make_shared<Ends>();
  REQUIRE(s.core.Watch(id, waiter).ok());
  s.Started(a);
  Reports(s, a, pb::TASK_STATUS_SUCCESS);
  CHECK_FALSE(answer.answered);
  CHECK(waiter->seen.empty());  // the task is not stored yet: nobody learns its outcome
  s.store.Release();
  REQUIRE(answer.answered);
  REQUIRE(answer.result.ok());
  CHECK(answer.result->status == pb::TASK_STATUS_SUCCESS);  // it ended before its submit was answered
  REQUIRE(waiter->seen.size() == 1);
  CHECK(waiter->seen[0].status() == pb::TASK_STATUS_SUCCESS);
  CHECK(waiter->seen[0].result() == "{\"n\":1}");
  CHECK(s.store.written[id] == Statuses{pb::TASK_STATUS_ASSIGNED, pb::TASK_STATUS_SUCCESS});
  const pb::Task t = *s.core.GetTask(id);
  CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t.attempts() == 1);
  REQUIRE(s.link->acks.size() == 1);  // acknowledged once its result is stored
  CHECK(s.link->acks[0].task_id() == id);
  // Accepted like any other: a second submit is placed on the freed slot.
  NextIsPlaced(s);
  s.core.Shutdown();
}

TEST_CASE("An unkeyed placed submit whose write fails is stopped on its worker and forgotten") {
  Setup s(/*busy_dispatch=*/false, /*slots=*/1);
  Answer answer;
  const std::string id = SubmitSentEarly(s, &answer);
  const pb::Assignment a = s.link->assigned[0];
  SECTION("still running: its worker is told to stop, and the slot frees when it reports the end") {
    s.Started(a);
    s.store.Release(absl::UnavailableError("disk full"));
    REQUIRE(answer.answered);
    CHECK(answer.result.status().code() == absl::StatusCode::kUnavailable);
    REQUIRE(s.link->cancels.size() == 1);
    CHECK(s.link->cancels[0].task_id() == id);
    CHECK(s.link->cancels[0].attempt() == 1);
    CHECK_FALSE(s.core.GetTask(id).ok());
    s.Submit();  // the slot is still held by the attempt being stopped
    CHECK(s.link->assigned.size() == 1);
    Reports(s, a, pb::TASK_STATUS_CANCELLED);
    REQUIRE(s.link->assigned.size() == 2);  // the slot is free: the queued submit goes
    CHECK_FALSE(s.core.GetTask(id).ok());   // the report does not bring it back
  }
  SECTION("already ended: nothing to stop, and its outcome is not kept") {
    Reports(s, a, pb::TASK_STATUS_SUCCESS);
    s.store.Release(absl::UnavailableError("disk full"));
    REQUIRE(answer.answered);
    CHECK(answer.result.status().code() == absl::StatusCode::kUnavailable);
    CHECK(s.link->cancels.empty());
    CHECK_FALSE(s.core.GetTask(id).ok());
    NextIsPlaced(s);
  }
  s.core.Shutdown();
}

TEST_CASE("A worker that restarts before an unkeyed placed submit's commit: the task is stored and retried") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string id = SubmitSentEarly(s, &answer);
  s.link = std::make_shared<FakeLink>();
  s.Join();  // reports no running attempt: the one it was sent is lost
  s.store.Release();
  REQUIRE(answer.answered);
  REQUIRE(answer.result.ok());
  const pb::Task t = *s.core.GetTask(id);
  CHECK(t.attempt_history_size() >= 1);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_FAILED);  // the lost attempt counts as a failure
  CHECK(t.status() == pb::TASK_STATUS_QUEUED);  // waiting out its retry backoff
  s.Tick(absl::Seconds(2));  // past the retry backoff (0.5 s): it runs again
  REQUIRE(s.link->assigned.size() == 1);
  CHECK(s.link->assigned[0].task_id() == id);
  CHECK(s.link->assigned[0].attempt() == 2);
  s.core.Shutdown();
}

TEST_CASE("An unkeyed placed submit handed back to the line before its failed commit leaves the line") {
  Setup s(/*busy_dispatch=*/false, /*slots=*/1);
  Answer answer;
  const std::string id = SubmitSentEarly(s, &answer);
  pb::WorkerMessage bye;
  bye.set_deregister(true);  // the worker leaves: its attempt goes back in line
  s.core.HandleWorkerMessage("w1", s.epoch, bye);
  REQUIRE(s.core.GetTask(id)->status() == pb::TASK_STATUS_QUEUED);
  s.store.Release(absl::UnavailableError("disk full"));
  REQUIRE(answer.answered);
  CHECK(answer.result.status().code() == absl::StatusCode::kUnavailable);
  CHECK_FALSE(s.core.GetTask(id).ok());
  s.link = std::make_shared<FakeLink>();
  s.Join();  // a free worker: nothing of the forgotten task is left in line for it
  CHECK(s.link->assigned.empty());
  NextIsPlaced(s);
  s.core.Shutdown();
}

TEST_CASE("A child of an unkeyed placed submit whose own commit fails is cancelled with it") {
  Setup s(/*busy_dispatch=*/false);
  Answer answer;
  const std::string parent = SubmitSentEarly(s, &answer);
  s.Started(s.link->assigned[0]);  // it runs before its commit, and submits a child
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  Submitter by;
  by.parent_task_id = parent;
  absl::StatusOr<SubmitResult> child = absl::UnknownError("not answered");
  s.core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { child = std::move(r); }, by);
  REQUIRE(s.store.held.size() == 2);  // the parent's submit, then the child's
  auto held = std::move(s.store.held);
  s.store.hold = false;
  held[0].second(absl::UnavailableError("disk full"));  // the parent's commit fails ...
  s.store.inner.Write(std::move(held[1].first), std::move(held[1].second));  // ... the child's does not
  CHECK(answer.result.status().code() == absl::StatusCode::kUnavailable);
  REQUIRE(child.ok());
  CHECK_FALSE(s.core.GetTask(parent).ok());
  const pb::Task t = *s.core.GetTask(child->task_id);
  CHECK(t.status() == pb::TASK_STATUS_CANCELLED);
  CHECK_THAT(t.error_message(), Catch::Contains("parent task " + parent + " was not stored"));
  s.core.Shutdown();
}

}  // namespace
}  // namespace rc::coordinator
