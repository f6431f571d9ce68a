// Issue 18: a result reaches its waiters before its own commit, the worker's
// acknowledgement waits for that commit, and an outcome waits for the commit of the
// attempt it ends (so that a restarted coordinator takes the worker's resend). A store
// that commits only when the test says so.
#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/synchronization/mutex.h"
#include "common/ids.h"
#include "coordinator/store/sqlite_task_store.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

class HeldStore final : public TaskStore {
 public:
  void Write(std::vector<TaskRecord> tasks, std::function<void(absl::Status)> done) override {
    for (auto& t : tasks) log.push_back(*ParseRecord(t));
    pending.push_back(std::move(done));
  }
  void WriteUnhurried(std::vector<TaskRecord> tasks, std::function<void(absl::Status)> done) override {
    ++unhurried;
    Write(std::move(tasks), std::move(done));
  }
  void Delete(std::vector<std::string>, std::function<void(absl::Status)> done) override { done(absl::OkStatus()); }
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override { return log; }
  // Completes every write so far with `status`.
  void Commit(absl::Status status = absl::OkStatus()) {
    auto now = std::move(pending);
    pending.clear();
    for (auto& done : now) done(status);
  }
  std::vector<pb::Task> log;  // every record written, in order
  std::vector<std::function<void(absl::Status)>> pending;
  int unhurried = 0;  // writes that may wait for a later commit
};

// What a Wait sees (the outcome only), or with `every_state` a WatchTask or SubmitAndWatch
// stream (every state).
class Waiter final : public TaskSink {
 public:
  explicit Waiter(bool every_state = false) : every_state_(every_state) {}
  void OnTask(pb::Task t) override { seen.push_back(std::move(t)); }
  void Abort(absl::Status s) override { aborted = s; }
  bool TerminalOnly() const override { return !every_state_; }
  std::vector<pb::Task> seen;
  std::optional<absl::Status> aborted;

 private:
  const bool every_state_;
};

struct Held {
  // Worker w1, one slot for echo tasks.
  void Join() {
    pb::Register reg;
    reg.mutable_capabilities()->set_device_id("w1");
    reg.mutable_capabilities()->set_slots(1);
    reg.mutable_capabilities()->add_task_types("echo");
    epoch = *core.RegisterWorker(reg, link);
  }
  // Submits an echo task and commits its submit. With `commit_attempt` it is placed on the
  // free worker with its submit (one write: the attempt is committed with it); without, it
  // is submitted before the worker joins, so it takes the usual way: in line, dispatched
  // when the worker joins, its assignment's write still pending.
  std::string Submit(bool commit_attempt) {
    if (commit_attempt) Join();
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    spec.set_payload(R"({"n":1})");
    std::string id;
    core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { id = r->task_id; });
    store.Commit();  // the submit: answered (and, placed, on its way to the worker)
    if (!commit_attempt) Join();
    REQUIRE(!id.empty());
    REQUIRE(link->assigned.size() == 1);
    CHECK(store.pending.size() == (commit_attempt ? 0u : 1u));  // the assignment's own write
    return id;
  }
  void Finish(const std::string& id) {
    pb::WorkerMessage m;
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(id);
    f->set_attempt(1);
    f->set_status(pb::TASK_STATUS_SUCCESS);
    f->set_result(R"({"n":1})");
    core.HandleWorkerMessage("w1", epoch, m);
  }

  FakeClock clock;
  HeldStore store;
  Coordinator core{Fixture::Options(), &store, &clock};
  std::shared_ptr<FakeLink> link = std::make_shared<FakeLink>();
  uint64_t epoch = 0;
};

}  // namespace

TEST_CASE("A waiter gets a result before its commit, the worker is acknowledged only after it") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  auto waiter = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, waiter).ok());
  pb::TaskSpec busy;  // a write in flight: the result's write may wait to share a later commit
  busy.set_task_type("gpu");
  h.core.Submit(busy, [](absl::StatusOr<SubmitResult>) {});
  h.Finish(id);
  REQUIRE(h.store.pending.size() == 2);  // that submit and the result's write, not committed
  REQUIRE(waiter->seen.size() == 1);
  CHECK(waiter->seen[0].status() == pb::TASK_STATUS_SUCCESS);
  CHECK(waiter->seen[0].result() == R"({"n":1})");
  CHECK(h.link->acks.empty());
  CHECK(h.store.unhurried >= 1);  // no client waits on the result's write

  // A Wait that starts after the result exists is answered at once, still uncommitted.
  auto late = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, late).ok());
  CHECK(late->seen.size() == 1);

  h.store.Commit();
  REQUIRE(h.link->acks.size() == 1);
  CHECK(h.link->acks[0].task_id() == id);
  CHECK(h.store.log.back().status() == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("Every watcher of a task gets the whole outcome, the last one too") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  std::vector<std::shared_ptr<Waiter>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_shared<Waiter>());
    REQUIRE(h.core.Watch(id, waiters.back()).ok());
  }
  h.Finish(id);
  for (const auto& w : waiters) {
    REQUIRE(w->seen.size() == 1);  // one snapshot, copied to each but the last, moved to that one
    CHECK(w->seen[0].task_id() == id);
    CHECK(w->seen[0].status() == pb::TASK_STATUS_SUCCESS);
    CHECK(w->seen[0].result() == R"({"n":1})");
    CHECK(w->seen[0].spec().payload() == R"({"n":1})");
  }
}

TEST_CASE("On a store with nothing in flight a result's write still waits to share the next commit") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  auto waiter = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, waiter).ok());
  h.Finish(id);
  REQUIRE(h.store.pending.size() == 1);
  CHECK(h.store.unhurried == 1);  // the client's next submit commits it along
  REQUIRE(waiter->seen.size() == 1);  // the outcome did not wait for it
  CHECK(h.link->acks.empty());
  h.store.Commit();
  CHECK(h.link->acks.size() == 1);
}

TEST_CASE("An outcome waits for the commit of the attempt it ends") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/false);
  auto waiter = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, waiter).ok());
  h.Finish(id);
  // The store knows nothing of attempt 1 yet: a restart now would queue the task again,
  // and another worker could run it; the result must not be shown before that write.
  CHECK(waiter->seen.empty());
  auto late = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, late).ok());
  CHECK(late->seen.empty());
  h.store.Commit();  // the assignment and the result, in order
  REQUIRE(waiter->seen.size() == 1);
  CHECK(waiter->seen[0].status() == pb::TASK_STATUS_SUCCESS);
  CHECK(late->seen.size() == 1);
  CHECK(h.link->acks.size() == 1);
}

TEST_CASE("An outcome whose attempt's write failed goes out once its own write settles") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/false);
  h.store.Commit(absl::UnavailableError("disk full"));  // the assignment's write fails
  auto waiter = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, waiter).ok());
  h.Finish(id);
  CHECK(waiter->seen.empty());
  h.store.Commit();  // the result's record carries the attempt too
  REQUIRE(waiter->seen.size() == 1);
  CHECK(h.link->acks.size() == 1);
}

TEST_CASE("After a failed commit the worker is not acknowledged, the result it sends again is stored, then acknowledged") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  auto waiter = std::make_shared<Waiter>();
  REQUIRE(h.core.Watch(id, waiter).ok());
  h.Finish(id);
  CHECK(waiter->seen.size() == 1);  // delivered before the commit
  h.store.Commit(absl::UnavailableError("disk full"));
  CHECK(h.link->acks.empty());  // the worker keeps it

  // The worker sends it again (as after a reconnect): written again, then acknowledged.
  const size_t logged = h.store.log.size();
  h.Finish(id);
  REQUIRE(h.store.log.size() == logged + 1);
  CHECK(h.store.log.back().task_id() == id);
  CHECK(h.store.log.back().status() == pb::TASK_STATUS_SUCCESS);
  CHECK(h.store.log.back().result() == R"({"n":1})");
  CHECK(h.link->acks.empty());
  h.store.Commit();
  REQUIRE(h.link->acks.size() == 1);
  CHECK(h.link->acks[0].task_id() == id);
  CHECK(waiter->seen.size() == 1);  // one outcome, shown once
}

TEST_CASE("A report sent again whose first write is still in flight is acknowledged only if that write succeeds") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  h.Finish(id);
  h.Finish(id);  // again, before the first write settled: nothing new to write
  REQUIRE(h.store.pending.size() == 1);
  h.store.Commit(absl::UnavailableError("disk full"));
  CHECK(h.link->acks.empty());
}

TEST_CASE("SQLite: an unhurried write commits, in order with a hurried one after it") {
  const std::string dir = (std::filesystem::temp_directory_path() / NewId("rc-unhurried-test")).string();
  std::filesystem::create_directories(dir);
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    absl::Mutex mu;
    std::vector<std::string> order;
    auto record = [&](const std::string& id, pb::TaskStatus st) {
      pb::Task t;
      t.set_task_id(id);
      t.set_status(st);
      t.mutable_spec()->set_task_type("echo");
      return ToRecords({t});
    };
    auto note = [&](const std::string& what) {
      return [&, what](absl::Status s) {
        absl::MutexLock lock(&mu);
        order.push_back(s.ok() ? what : "error");
      };
    };
    (*store)->WriteUnhurried(record("a", pb::TASK_STATUS_QUEUED), note("a"));
    (*store)->Write(record("b", pb::TASK_STATUS_QUEUED), note("b"));
    (*store)->WriteUnhurried(record("a", pb::TASK_STATUS_SUCCESS), note("a2"));
    {
      absl::MutexLock lock(&mu);
      auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return order.size() == 3; };
      REQUIRE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(10)));
      CHECK(order == std::vector<std::string>{"a", "b", "a2"});
    }
    auto a = (*store)->Get("a");
    REQUIRE(a.ok());
    REQUIRE(a->has_value());
    CHECK((*a)->status() == pb::TASK_STATUS_SUCCESS);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator

namespace rc::coordinator {
namespace {

// Records which messages may wait (SendLater) and when they are flushed.
class LaterLink final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    for (const auto& a : m.assignments()) assigned.push_back(a);
    sent_acks += m.finished_acks_size();
  }
  void SendLater(pb::CoordinatorMessage m) override { later_acks += m.finished_acks_size(); }
  void Flush() override { ++flushes; }
  void Close(absl::Status) override {}
  std::vector<pb::Assignment> assigned;
  int sent_acks = 0, later_acks = 0, flushes = 0;
};

}  // namespace

TEST_CASE("A result's acknowledgement may wait for the next message to its worker, and every tick flushes it") {
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(Fixture::Options(), &store, &clock);
  auto link = std::make_shared<LaterLink>();
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  const uint64_t epoch = *core.RegisterWorker(reg, link);
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  core.Submit(spec, [](absl::StatusOr<SubmitResult>) {});
  REQUIRE(link->assigned.size() == 1);
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(link->assigned[0].task_id());
  f->set_attempt(1);
  f->set_status(pb::TASK_STATUS_SUCCESS);
  core.HandleWorkerMessage("w1", epoch, m);
  CHECK(link->later_acks == 1);  // not a write of its own, which would hold up the next assignment
  CHECK(link->sent_acks == 0);
  const int before = link->flushes;
  core.Tick();
  CHECK(link->flushes == before + 1);
  core.Shutdown();
}


TEST_CASE("A watcher gets one snapshot per task and operation: started and finished in one message send the outcome only") {
  Held h;
  const std::string id = h.Submit(/*commit_attempt=*/true);
  auto watcher = std::make_shared<Waiter>(/*every_state=*/true);
  REQUIRE(h.core.Watch(id, watcher).ok());
  REQUIRE(watcher->seen.size() == 1);  // the state it had when the watch began
  CHECK(watcher->seen[0].status() == pb::TASK_STATUS_ASSIGNED);

  SECTION("one message: only the newest state goes out, not RUNNING before it") {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(id);
    s->set_attempt(1);
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(id);
    f->set_attempt(1);
    f->set_status(pb::TASK_STATUS_SUCCESS);
    f->set_result(R"({"n":1})");
    h.core.HandleWorkerMessage("w1", h.epoch, m);
    REQUIRE(watcher->seen.size() == 2);
    CHECK(watcher->seen[1].status() == pb::TASK_STATUS_SUCCESS);
    CHECK(watcher->seen[1].result() == R"({"n":1})");
  }
  SECTION("two messages: each state goes out") {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(id);
    s->set_attempt(1);
    h.core.HandleWorkerMessage("w1", h.epoch, m);
    h.Finish(id);
    REQUIRE(watcher->seen.size() == 3);
    CHECK(watcher->seen[1].status() == pb::TASK_STATUS_RUNNING);
    CHECK(watcher->seen[2].status() == pb::TASK_STATUS_SUCCESS);
  }
}

TEST_CASE("One sink watching several tasks in one operation gets a snapshot of each") {
  Held h;
  const std::string first = h.Submit(/*commit_attempt=*/true);
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  std::string second;
  h.core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { second = r->task_id; });
  h.store.Commit();
  REQUIRE(!second.empty());
  auto watcher = std::make_shared<Waiter>(/*every_state=*/true);
  std::vector<absl::StatusOr<uint64_t>> ids = h.core.WatchAll({first, second}, watcher);
  REQUIRE(ids.size() == 2);
  REQUIRE(watcher->seen.size() == 2);
  CHECK(watcher->seen[0].task_id() == first);
  CHECK(watcher->seen[1].task_id() == second);
  CHECK(watcher->seen[1].status() == pb::TASK_STATUS_QUEUED);  // the one slot is taken
}

}  // namespace rc::coordinator
