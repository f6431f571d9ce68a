#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/coordinator_fixture.h"

// Slot lending through the coordinator (DESIGN.md "Workflows", "No deadlock"): a worker
// reports which of its attempts wait on their subtree (WorkerMessage.waiting,
// Register.waiting) and dispatch hands their slots to deeper tasks, up to the cap.
namespace rc::coordinator {
namespace {

// A worker link that keeps every message, Registered included.
class Link final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    if (m.has_registered()) registered.push_back(m.registered());
    for (const auto& a : m.assignments()) assigned.push_back(a.task_id());
  }
  void Close(absl::Status) override {}
  std::vector<pb::Registered> registered;
  std::vector<std::string> assigned;
};

// A queued task as the store would hold it: `depth` 0 is top-level, else a child of `parent`.
pb::Task Queued(const std::string& id, uint64_t seq, int32_t depth, const std::string& parent = "") {
  pb::Task t;
  t.set_task_id(id);
  t.set_status(pb::TASK_STATUS_QUEUED);
  t.set_sequence(seq);
  t.mutable_spec()->set_task_type("echo");
  t.set_depth(depth);
  t.set_parent_task_id(parent);
  // Abandoned children: a parent's end does not cancel them (that is workflows_test's
  // subject), so this test sees only where the slot goes.
  if (!parent.empty()) t.mutable_spec()->set_parent_close(pb::PARENT_CLOSE_ABANDON);
  return t;
}

pb::Register OneSlot(const std::string& device) {
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id(device);
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  return reg;
}

pb::RunningAttempt Attempt(const std::string& task_id, int32_t attempt = 1) {
  pb::RunningAttempt a;
  a.set_task_id(task_id);
  a.set_attempt(attempt);
  return a;
}

// The whole set of waiting attempts, as the worker sends it when it changes.
pb::WorkerMessage Waiting(const std::vector<std::string>& task_ids) {
  pb::WorkerMessage m;
  m.mutable_waiting();  // present, even when empty: nothing waits any more
  for (const std::string& id : task_ids) *m.mutable_waiting()->add_attempts() = Attempt(id);
  return m;
}

pb::WorkerMessage Finished(const std::string& task_id) {
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(task_id);
  f->set_attempt(1);
  f->set_status(pb::TASK_STATUS_SUCCESS);
  return m;
}

CoordinatorOptions MaxDepth(int32_t depth) {
  CoordinatorOptions o = Fixture::Options();
  o.max_task_depth = depth;
  return o;
}

}  // namespace

TEST_CASE("A one-slot worker lends the slot of a waiting task to a deeper one, up to the cap") {
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(MaxDepth(2), &store, &clock);  // at most 2 waiting attempts per slot
  // A parent, another top-level task, then the parent's child, grandchild and a depth-3 task.
  core.Recover({Queued("task-p", 1, 0), Queued("task-q", 2, 0), Queued("task-c", 3, 1, "task-p"),
                Queued("task-g", 4, 2, "task-c"), Queued("task-h", 5, 3, "task-g")});
  auto link = std::make_shared<Link>();
  auto epoch = core.RegisterWorker(OneSlot("w1"), link);
  REQUIRE(epoch.ok());
  REQUIRE(link->registered.size() == 1);
  CHECK(link->registered[0].max_task_depth() == 2);
  CHECK(link->assigned == std::vector<std::string>{"task-p"});  // its one slot

  // The parent waits for its child: the slot is lent, to the child only (task-q, top-level
  // like the parent, stays queued though it is ahead in line).
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p"}));
  CHECK(link->assigned == std::vector<std::string>{"task-p", "task-c"});
  CHECK(core.GetTask("task-q")->status() == pb::TASK_STATUS_QUEUED);
  std::vector<pb::Worker> listed = core.ListWorkers("w1");
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].running() == 2);
  CHECK(listed[0].load() == 1.0);  // the waiting one does not count
  CHECK(core.Stats().busy_slots() == 1);

  // The same set again, or attempts it does not hold: nothing changes.
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p"}));
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p", "task-q", "task-nobody"}));
  CHECK(link->assigned.size() == 2);

  // The child waits too: the grandchild runs (2 waiting: the cap for one slot).
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p", "task-c"}));
  CHECK(link->assigned == std::vector<std::string>{"task-p", "task-c", "task-g"});
  // The grandchild waits as well: past the cap, even the deeper task-h gets nothing.
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p", "task-c", "task-g"}));
  CHECK(link->assigned.size() == 3);
  CHECK(core.GetTask("task-h")->status() == pb::TASK_STATUS_QUEUED);

  // The grandchild stops waiting and ends: its slot was lent, and task-h (deeper than the
  // deepest waiting, the child at 1) takes it; task-q still cannot.
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p", "task-c"}));
  CHECK(link->assigned.size() == 3);  // the grandchild runs again: no lent slot is free
  core.HandleWorkerMessage("w1", *epoch, Finished("task-g"));
  CHECK(link->assigned == std::vector<std::string>{"task-p", "task-c", "task-g", "task-h"});
  core.HandleWorkerMessage("w1", *epoch, Finished("task-h"));
  CHECK(link->assigned.size() == 4);

  // The child ends while still reported waiting (its entry is forgotten with it), then
  // the parent stops waiting and ends: the slot is its own again, and task-q runs.
  core.HandleWorkerMessage("w1", *epoch, Finished("task-c"));
  CHECK(link->assigned.size() == 4);  // the parent still waits: the slot goes deeper only
  core.HandleWorkerMessage("w1", *epoch, Waiting({}));
  CHECK(link->assigned.size() == 4);  // the parent runs: the slot is busy
  core.HandleWorkerMessage("w1", *epoch, Finished("task-p"));
  CHECK(link->assigned.back() == "task-q");
  CHECK(core.ListWorkers("w1")[0].load() == 1.0);
}

TEST_CASE("A reconnecting worker's Register.waiting lends its slots at once") {
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(MaxDepth(8), &store, &clock);
  core.Recover({Queued("task-p", 1, 0), Queued("task-c", 2, 1, "task-p")});
  auto first = std::make_shared<Link>();
  auto epoch = core.RegisterWorker(OneSlot("w1"), first);
  REQUIRE(epoch.ok());
  CHECK(first->assigned == std::vector<std::string>{"task-p"});

  // The worker comes back running the parent, which waits: the child goes there.
  pb::Register again = OneSlot("w1");
  *again.add_running() = Attempt("task-p");
  *again.add_waiting() = Attempt("task-p");
  *again.add_waiting() = Attempt("task-elsewhere");  // not held there: ignored
  auto second = std::make_shared<Link>();
  epoch = core.RegisterWorker(again, second);
  REQUIRE(epoch.ok());
  CHECK(second->assigned == std::vector<std::string>{"task-c"});
  CHECK(core.ListWorkers("w1")[0].running() == 2);
  CHECK(core.Stats().busy_slots() == 1);
}

TEST_CASE("Without lending (max_task_depth 0) a waiting task keeps its slot") {
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(MaxDepth(0), &store, &clock);
  core.Recover({Queued("task-p", 1, 0), Queued("task-c", 2, 1, "task-p")});
  auto link = std::make_shared<Link>();
  auto epoch = core.RegisterWorker(OneSlot("w1"), link);
  REQUIRE(epoch.ok());
  core.HandleWorkerMessage("w1", *epoch, Waiting({"task-p"}));
  CHECK(link->assigned == std::vector<std::string>{"task-p"});
}

}  // namespace rc::coordinator
