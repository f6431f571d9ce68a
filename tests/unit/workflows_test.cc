// Workflows in the coordinator core (DESIGN.md "Workflows"): children and their limits,
// idempotency keys scoped to the parent, ends that propagate to children, `after`
// dependencies (ok/any/notok, after_index, unknown ids, cascades), cancel of a pending task.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

pb::TaskSpec Echo(const std::function<void(pb::TaskSpec*)>& edit = nullptr) {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  if (edit) edit(&spec);
  return spec;
}

absl::StatusOr<SubmitResult> SubmitAs(Fixture& f, pb::TaskSpec spec, const Submitter& by) {
  absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
  f.core.Submit(std::move(spec), [&](absl::StatusOr<SubmitResult> r) { out = std::move(r); }, by);
  return out;
}

std::string Child(Fixture& f, const std::string& parent, const std::function<void(pb::TaskSpec*)>& edit = nullptr) {
  Submitter by("someone");
  by.parent_task_id = parent;
  absl::StatusOr<SubmitResult> r = SubmitAs(f, Echo(edit), by);
  REQUIRE(r.ok());
  return r->task_id;
}

pb::Dependency* After(pb::TaskSpec* spec, const std::string& id,
                      pb::DependencyCondition c = pb::DEPENDENCY_CONDITION_UNSPECIFIED) {
  pb::Dependency* d = spec->add_after();
  d->set_task_id(id);
  d->set_condition(c);
  return d;
}

// The assignment of `id` sent to `link`.
pb::Assignment AssignmentOf(const FakeLink& link, const std::string& id) {
  for (const pb::Assignment& a : link.assigned) {
    if (a.task_id() == id) return a;
  }
  FAIL("no assignment of " << id);
  return {};
}

std::vector<std::string> WaitingFor(const pb::Task& t) { return {t.waiting_for().begin(), t.waiting_for().end()}; }

}  // namespace

TEST_CASE("Workflows: a child records parent, root, depth and ancestors, and inherits the owner") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 4, link);
  absl::StatusOr<SubmitResult> top = SubmitAs(f, Echo(), Submitter("alice"));
  REQUIRE(top.ok());
  const std::string p = top->task_id;
  pb::Task parent = f.Get(p);
  CHECK(parent.root_task_id() == p);
  CHECK(parent.depth() == 0);
  CHECK(parent.parent_task_id().empty());

  const std::string c = Child(f, p);
  const std::string g = Child(f, c);
  pb::Task child = f.Get(c);
  CHECK(child.parent_task_id() == p);
  CHECK(child.root_task_id() == p);
  CHECK(child.depth() == 1);
  CHECK(child.owner() == "alice");  // the parent's, not the caller's name
  CHECK(std::vector<std::string>(child.ancestor_task_ids().begin(), child.ancestor_task_ids().end()) ==
        std::vector<std::string>{p});
  pb::Task grand = f.Get(g);
  CHECK(grand.root_task_id() == p);
  CHECK(grand.depth() == 2);
  CHECK(std::vector<std::string>(grand.ancestor_task_ids().begin(), grand.ancestor_task_ids().end()) ==
        std::vector<std::string>{p, c});

  TaskFilter children;
  children.parent_task_id = p;
  auto listed = f.core.ListTasks(children);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].task_id() == c);
}

TEST_CASE("Workflows: a finished or unknown parent cannot submit, naming it and how it ended") {
  CoordinatorOptions o = Fixture::Options();
  o.finished_cache_tasks = 0;  // finished tasks leave memory: the refusal reads the store
  Fixture f(o);
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  const std::string p = f.Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(0);
  });
  f.Finish("w1", epoch, AssignmentOf(*link, p), pb::TASK_STATUS_FAILED);
  Submitter by;
  by.parent_task_id = p;
  absl::StatusOr<SubmitResult> r = SubmitAs(f, Echo(), by);
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains(p) && Catch::Contains("ended failed"));
  by.parent_task_id = "task-nope";
  r = SubmitAs(f, Echo(), by);
  CHECK(r.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("task-nope"));
}

TEST_CASE("Workflows: depth and unfinished children are limited, naming the limit") {
  CoordinatorOptions o = Fixture::Options();
  o.max_task_depth = 2;
  o.max_children_per_task = 2;
  Fixture f(o);
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 8, link);
  const std::string p = f.Submit("echo");
  const std::string c1 = Child(f, p);
  const std::string g = Child(f, c1);  // depth 2: the limit
  Submitter by;
  by.parent_task_id = g;
  absl::StatusOr<SubmitResult> r = SubmitAs(f, Echo(), by);
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("max_task_depth") && Catch::Contains(g));

  Child(f, p);  // the second child
  by.parent_task_id = p;
  r = SubmitAs(f, Echo(), by);
  CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("max_children_per_task") && Catch::Contains("2"));
  // Only unfinished children count: one ends, another fits.
  f.Finish("w1", epoch, AssignmentOf(*link, c1));
  CHECK(SubmitAs(f, Echo(), by).ok());
}

TEST_CASE("Workflows: idempotency keys are scoped to the parent, a retried parent gets its children back") {
  CoordinatorOptions o = Fixture::Options();
  o.finished_cache_tasks = 0;
  Fixture f(o);
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 8, link);
  const std::string p1 = f.Submit("echo");
  const std::string p2 = f.Submit("echo");
  auto keyed = [](pb::TaskSpec* s) { s->set_idempotency_key("part-0"); };
  const std::string a = Child(f, p1, keyed);
  const std::string b = Child(f, p2, keyed);
  const std::string top = f.Submit("echo", pb::PRIORITY_NORMAL, keyed);
  CHECK(a != b);
  CHECK(top != a);
  CHECK(top != b);

  // p1's attempt is lost; its retry submits the same key: the same child, existing.
  f.clock.Advance(absl::Seconds(6));
  f.core.Tick();  // w1 silent past offline_after: its attempts fail and retry
  REQUIRE(f.Get(p1).status() == pb::TASK_STATUS_QUEUED);
  Submitter by;
  by.parent_task_id = p1;
  absl::StatusOr<SubmitResult> again = SubmitAs(f, Echo(keyed), by);
  REQUIRE(again.ok());
  CHECK(again->task_id == a);
  CHECK(again->existing);

  // Once the child finished and left memory, the store answers for the key.
  auto link2 = std::make_shared<FakeLink>();
  epoch = f.Join("w1", 8, link2);
  f.PassBackoff();  // the lost attempts' retries go out
  f.Finish("w1", epoch, AssignmentOf(*link2, a));
  REQUIRE(f.Get(a).status() == pb::TASK_STATUS_SUCCESS);
  again = SubmitAs(f, Echo(keyed), by);
  REQUIRE(again.ok());
  CHECK(again->task_id == a);
  CHECK(again->existing);
  CHECK(again->status == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("Workflows: a parent's end cancels its unfinished children, down the tree, except abandoned ones") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 2, link);
  const std::string p = f.Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(0);
  });
  const std::string running = Child(f, p);  // takes the second slot
  const std::string queued = Child(f, p);
  const std::string abandoned = Child(f, p, [](pb::TaskSpec* s) { s->set_parent_close(pb::PARENT_CLOSE_ABANDON); });
  const std::string grand = Child(f, running);
  REQUIRE(f.Get(running).status() == pb::TASK_STATUS_ASSIGNED);
  const pb::Assignment run = AssignmentOf(*link, running);

  f.Finish("w1", epoch, AssignmentOf(*link, p), pb::TASK_STATUS_FAILED);
  CHECK(f.Get(p).status() == pb::TASK_STATUS_FAILED);
  for (const std::string& id : {running, queued}) {
    pb::Task t = f.Get(id);
    CHECK(t.status() == pb::TASK_STATUS_CANCELLED);
    CHECK(t.error_message() == "cancelled: parent " + p + " ended failed");
  }
  pb::Task g = f.Get(grand);
  CHECK(g.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(g.error_message() == "cancelled: parent " + running + " ended cancelled");
  // The running child's worker is told to stop it.
  REQUIRE(link->cancels.size() == 1);
  CHECK(link->cancels[0].task_id() == running);
  CHECK(link->cancels[0].attempt() == run.attempt());
  // The abandoned child runs on (the slot p left is free for it).
  CHECK(f.Get(abandoned).status() == pb::TASK_STATUS_ASSIGNED);
}

TEST_CASE("Workflows: a parent that succeeds leaves its unfinished children running") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 2, link);
  const std::string p = f.Submit("echo");
  const std::string running = Child(f, p);  // takes the second slot
  const std::string queued = Child(f, p);
  f.Finish("w1", epoch, AssignmentOf(*link, p));  // success
  CHECK(f.Get(p).status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.Get(running).status() == pb::TASK_STATUS_ASSIGNED);
  CHECK(f.Get(queued).status() == pb::TASK_STATUS_ASSIGNED);  // took the slot p left
  CHECK(link->cancels.empty());
}

TEST_CASE("Workflows: dependencies wait pending, then queue or end cancelled by their condition, in cascade") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  const std::string a = f.Submit("echo");  // runs
  const std::string ok = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) { After(s, a); });
  const std::string notok = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) {
    After(s, a, pb::DEPENDENCY_CONDITION_NOTOK);
  });
  const std::string any = f.Submit("echo", pb::PRIORITY_LOW, [&](pb::TaskSpec* s) {
    After(s, a, pb::DEPENDENCY_CONDITION_ANY);
  });
  const std::string after_notok = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) { After(s, notok); });
  pb::Task waiting = f.Get(ok);
  CHECK(waiting.status() == pb::TASK_STATUS_PENDING);
  CHECK(WaitingFor(waiting) == std::vector<std::string>{a});
  CHECK(waiting.spec().after(0).condition() == pb::DEPENDENCY_CONDITION_OK);  // stored explicit
  CHECK(f.core.Stats().tasks().at("pending") == 4);

  f.Finish("w1", epoch, AssignmentOf(*link, a));  // success
  CHECK(f.Get(ok).status() == pb::TASK_STATUS_ASSIGNED);  // queued, then took the free slot
  pb::Task q = f.Get(any);
  CHECK(q.status() == pb::TASK_STATUS_QUEUED);
  CHECK(q.waiting_for_size() == 0);
  pb::Task never = f.Get(notok);
  CHECK(never.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(never.error_message() == "dependency " + a + " ended success; this task needed notok");
  pb::Task cascade = f.Get(after_notok);
  CHECK(cascade.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(cascade.error_message() == "dependency " + notok + " ended cancelled; this task needed ok");
}

TEST_CASE("Workflows: a failed dependency cancels what needed ok and queues what needed notok") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  const std::string a = f.Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->set_max_retries(0);
  });
  const std::string b = f.Submit("echo");  // queued behind a: a dependency not ended yet either
  const std::string ok = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) {
    After(s, a);
    After(s, b);
  });
  const std::string notok = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) {
    After(s, a, pb::DEPENDENCY_CONDITION_NOTOK);
    After(s, b, pb::DEPENDENCY_CONDITION_ANY);
  });
  CHECK(WaitingFor(f.Get(notok)) == std::vector<std::string>{a, b});
  f.Finish("w1", epoch, AssignmentOf(*link, a), pb::TASK_STATUS_FAILED);
  pb::Task cancelled = f.Get(ok);
  CHECK(cancelled.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(cancelled.error_message() == "dependency " + a + " ended failed; this task needed ok");
  CHECK(cancelled.waiting_for_size() == 0);
  pb::Task half = f.Get(notok);
  CHECK(half.status() == pb::TASK_STATUS_PENDING);
  CHECK(WaitingFor(half) == std::vector<std::string>{b});
  f.Finish("w1", epoch, AssignmentOf(*link, b), pb::TASK_STATUS_CANCELLED);
  CHECK(f.Get(notok).status() == pb::TASK_STATUS_ASSIGNED);
}

TEST_CASE("Workflows: after_index names an earlier accepted entry of the batch, other references are refused") {
  Fixture f;
  std::vector<pb::TaskSpec> specs(6, Echo());
  specs[1].add_after()->set_after_index(0);
  specs[2].add_after()->set_after_index(2);  // itself: a cycle
  specs[3].add_after()->set_after_index(5);  // a later entry: a cycle
  After(&specs[4], "task-nope");             // unknown
  specs[5].add_after()->set_after_index(4);  // an entry that was refused
  std::vector<absl::StatusOr<SubmitResult>> out;
  f.core.SubmitBatch(specs, [&](std::vector<absl::StatusOr<SubmitResult>> r) { out = std::move(r); });
  REQUIRE(out.size() == 6);
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[1]->status == pb::TASK_STATUS_PENDING);  // durable, waiting for entry 0
  pb::Task b = f.Get(out[1]->task_id);
  CHECK(WaitingFor(b) == std::vector<std::string>{out[0]->task_id});
  CHECK(b.spec().after(0).task_id() == out[0]->task_id);  // stored as the id
  CHECK_FALSE(b.spec().after(0).has_after_index());
  for (int i : {2, 3}) {
    CHECK(out[i].status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(out[i].status().message()),
               Catch::Contains("after[0].after_index") && Catch::Contains("not an earlier entry"));
  }
  CHECK(out[4].status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(out[4].status().message() == "after[0].task_id: no task with id 'task-nope'");
  CHECK(out[5].status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(out[5].status().message()), Catch::Contains("entry 4 of this batch was refused"));
  // A single submit has no earlier entry.
  pb::TaskSpec alone = Echo();
  alone.add_after()->set_after_index(0);
  CHECK(SubmitAs(f, alone, Submitter()).status().code() == absl::StatusCode::kInvalidArgument);
  // Malformed dependencies are refused by validation, naming the entry.
  pb::TaskSpec both = Echo();
  After(&both, out[0]->task_id)->set_after_index(0);
  absl::StatusOr<SubmitResult> r = SubmitAs(f, both, Submitter());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("after[0]") && Catch::Contains("exactly one"));
}

TEST_CASE("Workflows: the caller's check refuses a dependency, naming it") {
  Fixture f;
  const std::string a = f.Submit("echo");
  Submitter by("bob");
  by.may_depend_on = [](const pb::Task& t) {
    return absl::PermissionDeniedError(absl::StrCat("task ", t.task_id(), " is not in your subtree"));
  };
  pb::TaskSpec spec = Echo();
  After(&spec, a);
  absl::StatusOr<SubmitResult> r = SubmitAs(f, spec, by);
  CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(r.status().message() == "after[0].task_id: task " + a + " is not in your subtree");
}

TEST_CASE("Workflows: dependencies that ended and left memory are read from the store") {
  CoordinatorOptions o = Fixture::Options();
  o.finished_cache_tasks = 0;
  Fixture f(o);
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  const std::string a = f.Submit("echo");
  f.Finish("w1", epoch, AssignmentOf(*link, a));
  f.core.Tick();  // its record is durable now: the next operation evicts it
  REQUIRE(f.core.tasks_in_memory() == 0);
  pb::TaskSpec ok = Echo();
  After(&ok, a);
  absl::StatusOr<SubmitResult> r = SubmitAs(f, ok, Submitter());
  REQUIRE(r.ok());
  CHECK(r->status == pb::TASK_STATUS_ASSIGNED);  // nothing to wait for: placed on the free worker with its submit
  CHECK(f.Get(r->task_id).status() == pb::TASK_STATUS_ASSIGNED);
  pb::TaskSpec notok = Echo();
  After(&notok, a, pb::DEPENDENCY_CONDITION_NOTOK);
  r = SubmitAs(f, notok, Submitter());
  REQUIRE(r.ok());
  CHECK(r->status == pb::TASK_STATUS_CANCELLED);
  CHECK(f.Get(r->task_id).error_message() == "dependency " + a + " ended success; this task needed notok");
}

TEST_CASE("Workflows: a pending task can be cancelled, and what waits for it follows") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  const std::string a = f.Submit("echo");
  const std::string b = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) { After(s, a); });
  const std::string c = f.Submit("echo", pb::PRIORITY_NORMAL, [&](pb::TaskSpec* s) { After(s, b); });
  absl::StatusOr<pb::CancelTaskResponse> r = f.Cancel(b);
  REQUIRE(r.ok());
  CHECK(r->cancelled());
  pb::Task cb = f.Get(b);
  CHECK(cb.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(cb.waiting_for_size() == 0);
  CHECK(f.Get(c).error_message() == "dependency " + b + " ended cancelled; this task needed ok");
  f.Finish("w1", epoch, AssignmentOf(*link, a));  // b's end is final
  CHECK(f.Get(b).status() == pb::TASK_STATUS_CANCELLED);
  CHECK(f.core.Stats().tasks().at("pending") == 0);
}

}  // namespace rc::coordinator
