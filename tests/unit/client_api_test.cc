// The client API (coordinator/api/client_api.h) over a core with a fake clock: who is
// admitted to what, the limits and defaults, and the error texts both front-ends pass on.
#include <catch2/catch.hpp>
#include <cmath>

#include "coordinator/api/client_api.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kAlice = "alice-token-0123456789abcdef";
const std::string kReader = "read-token-0123456789abcdef0";

const Principal kAlicePrincipal{Role::kSubmit, "alice"};
const Principal kBobPrincipal{Role::kSubmit, "bob"};
const Principal kReaderPrincipal{Role::kRead, "auditor"};
const Principal kRoot{Role::kAdmin, "root"};

TokenTable Tokens() {
  absl::StatusOr<TokenTable> t =
      TokenTable::Make({}, {"admin " + kAdmin + " root", "submit " + kAlice + " alice", "read " + kReader + " auditor"});
  REQUIRE(t.ok());
  return *std::move(t);
}

struct ApiFixture : Fixture {
  ClientApi api{&core, nullptr};

  absl::StatusOr<SubmitResult> SubmitAs(const Principal& who, const std::string& tag = "") {
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    if (!tag.empty()) spec.mutable_requirements()->add_required_tags(tag);
    absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
    api.Submit(who, spec, [&](absl::StatusOr<SubmitResult> r) { out = std::move(r); });
    return out;
  }
  absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> Batch(const Principal& who,
                                                                  std::vector<absl::StatusOr<pb::TaskSpec>> specs) {
    absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> out = absl::InternalError("not answered");
    api.SubmitBatch(who, "tasks", std::move(specs), [&](auto r) { out = std::move(r); });
    return out;
  }
};

pb::TaskSpec Echo() {
  pb::TaskSpec s;
  s.set_task_type("echo");
  return s;
}

TEST_CASE("The authorization table: which role may call which operation before a task is known") {
  struct Row {
    ClientOp op;
    bool submit, read, admin;
  };
  // Per-task operations (get, watch, cancel) pass here for every role: the task's owner decides.
  const Row table[] = {
      {ClientOp::kSubmit, true, false, true},      {ClientOp::kGetTask, true, true, true},
      {ClientOp::kWatchTask, true, true, true},    {ClientOp::kCancelTask, true, true, true},
      {ClientOp::kListTasks, true, true, true},    {ClientOp::kListWorkers, true, true, true},
      {ClientOp::kGetStats, true, true, true},     {ClientOp::kMetrics, true, true, true},
      {ClientOp::kDrainWorker, false, false, true},
  };
  for (const Row& r : table) {
    INFO(static_cast<int>(r.op));
    CHECK(AllowOp(kAlicePrincipal, r.op).ok() == r.submit);
    CHECK(AllowOp(kReaderPrincipal, r.op).ok() == r.read);
    CHECK(AllowOp(kRoot, r.op).ok() == r.admin);
  }
  pb::Task alices;
  alices.set_owner("alice");
  CHECK(TaskAccessFor(kAlicePrincipal, ClientOp::kGetTask)(alices).ok());
  CHECK(TaskAccessFor(kBobPrincipal, ClientOp::kGetTask)(alices).code() == absl::StatusCode::kPermissionDenied);
  CHECK(TaskAccessFor(kBobPrincipal, ClientOp::kWatchTask)(alices).code() == absl::StatusCode::kPermissionDenied);
  CHECK(TaskAccessFor(kReaderPrincipal, ClientOp::kWatchTask)(alices).ok());
  CHECK(TaskAccessFor(kReaderPrincipal, ClientOp::kCancelTask)(alices).code() == absl::StatusCode::kPermissionDenied);
  CHECK(TaskAccessFor(kRoot, ClientOp::kCancelTask)(alices).ok());
}

TEST_CASE("Admit: the token decides with client tokens, the peer without, the role gates the operation") {
  Fixture f;
  TokenTable tokens = Tokens();
  ClientApi api(&f.core, &tokens);
  int peer_asked = 0;
  auto loopback = [&] {
    ++peer_asked;
    return Peer{"ipv4:127.0.0.1:5000", false};
  };
  CHECK(api.Admit(ClientOp::kGetStats, "", loopback).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(api.Admit(ClientOp::kGetStats, "Bearer not-a-token-0123456789", loopback).status().code() ==
        absl::StatusCode::kUnauthenticated);
  absl::StatusOr<Principal> alice = api.Admit(ClientOp::kSubmit, "Bearer " + kAlice, loopback);
  REQUIRE(alice.ok());
  CHECK(alice->name == "alice");
  CHECK(alice->role == Role::kSubmit);
  absl::StatusOr<Principal> reader = api.Admit(ClientOp::kSubmit, "Bearer " + kReader, loopback);
  CHECK(reader.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(reader.status().message() == "token 'auditor' (role read) may not submit tasks: the read role is read-only");
  CHECK(api.Admit(ClientOp::kDrainWorker, "Bearer " + kAlice, loopback).status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(api.Admit(ClientOp::kDrainWorker, "Bearer " + kAdmin, loopback).ok());
  CHECK(peer_asked == 0);  // with tokens only the token counts

  ClientApi open(&f.core, nullptr);
  absl::StatusOr<Principal> local = open.Admit(ClientOp::kDrainWorker, "", loopback);
  REQUIRE(local.ok());
  CHECK(local->role == Role::kAdmin);
  CHECK(peer_asked == 1);
  CHECK(open.Admit(ClientOp::kGetStats, "", [] { return Peer{"ipv4:192.0.2.7:5000", false}; }).status().code() ==
        absl::StatusCode::kUnauthenticated);
  CHECK(open.Admit(ClientOp::kGetStats, "", [] { return Peer{"ipv4:192.0.2.7:5000", true}; }).ok());
}

TEST_CASE_METHOD(ApiFixture, "Every operation checks its caller itself, whoever admitted it") {
  absl::StatusOr<SubmitResult> refused = SubmitAs(kReaderPrincipal);
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  auto batch = Batch(kReaderPrincipal, {Echo()});
  CHECK(batch.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.DrainWorker(kAlicePrincipal, "w1", true).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.Stats(kReaderPrincipal).ok());
  CHECK(core.ListTasks(TaskFilter{}).value().empty());  // nothing reached the core
}

TEST_CASE_METHOD(ApiFixture, "A task is read, watched and cancelled by its owner, a reader reads, an admin cancels") {
  absl::StatusOr<SubmitResult> a = SubmitAs(kAlicePrincipal, "nowhere");
  REQUIRE(a.ok());
  CHECK(api.GetTask(kAlicePrincipal, a->task_id).ok());
  CHECK(api.GetTask(kReaderPrincipal, a->task_id).ok());
  absl::StatusOr<pb::Task> other = api.GetTask(kBobPrincipal, a->task_id);
  CHECK(other.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(other.status().message() == "token 'bob' (role submit) may not read this task: it belongs to another submitter");
  CHECK(api.GetTask(kBobPrincipal, "task-nope").status().message() == "no task with id 'task-nope'");

  class Sink final : public TaskSink {
   public:
    void OnTask(pb::Task) override {}
    void Abort(absl::Status) override {}
  };
  auto sink = std::make_shared<Sink>();
  CHECK(api.Watch(kBobPrincipal, a->task_id, sink).status().code() == absl::StatusCode::kPermissionDenied);
  std::vector<absl::StatusOr<uint64_t>> all = api.WatchAll(kBobPrincipal, {a->task_id, "task-nope"}, sink);
  REQUIRE(all.size() == 2);
  CHECK(all[0].status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(all[1].status().code() == absl::StatusCode::kNotFound);
  absl::StatusOr<uint64_t> w = api.Watch(kAlicePrincipal, a->task_id, sink);
  REQUIRE(w.ok());
  api.Unwatch(a->task_id, *w);

  absl::StatusOr<pb::CancelTaskResponse> out = absl::InternalError("not answered");
  api.Cancel(kReaderPrincipal, a->task_id, [&](auto r) { out = std::move(r); });
  CHECK(out.status().code() == absl::StatusCode::kPermissionDenied);
  api.Cancel(kAlicePrincipal, a->task_id, [&](auto r) { out = std::move(r); });
  REQUIRE(out.ok());
  CHECK(out->cancelled());
  CHECK(Get(a->task_id).error_message() == "cancelled by alice");
}

TEST_CASE_METHOD(ApiFixture, "A batch holds 1..10000 specs, refused entries keep their place, named by the request's field") {
  auto empty = Batch(kRoot, {});
  CHECK(empty.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(empty.status().message() == "tasks: a batch holds 1..10000 tasks, got 0");
  std::vector<absl::StatusOr<pb::TaskSpec>> many(10001, Echo());
  auto over = Batch(kRoot, std::move(many));
  CHECK(over.status().message() == "tasks: a batch holds 1..10000 tasks, got 10001");
  CHECK(ClientApi::CheckBatchSize("specs", 10000).ok());
  CHECK(ClientApi::CheckBatchSize("specs", 10001).message() == "specs: a batch holds 1..10000 tasks, got 10001");

  pb::TaskSpec bad = Echo();
  bad.set_payload("not json");
  auto r = Batch(kRoot, {Echo(), absl::InvalidArgumentError("priority: unknown priority 'asap'"), bad, Echo()});
  REQUIRE(r.ok());
  REQUIRE(r->size() == 4);
  CHECK((*r)[0].ok());
  CHECK((*r)[1].status().message() == "tasks[1].priority: unknown priority 'asap'");
  CHECK((*r)[2].status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string((*r)[2].status().message()).rfind("tasks[2].payload", 0) == 0);
  REQUIRE((*r)[3].ok());
  CHECK(Get((*r)[3]->task_id).owner() == "root");
}

TEST_CASE("A batch entry refused for another reason than a field is named with a colon") {
  CoordinatorOptions o = Fixture::Options();
  o.max_unfinished_per_owner = 1;
  Fixture f(o);
  ClientApi api(&f.core, nullptr);
  absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> out = absl::InternalError("not answered");
  api.SubmitBatch(kAlicePrincipal, "specs", {Echo(), Echo()}, [&](auto r) { out = std::move(r); });
  REQUIRE(out.ok());
  REQUIRE(out->size() == 2);
  CHECK((*out)[0].ok());
  CHECK((*out)[1].status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string((*out)[1].status().message()).rfind("specs[1]: ", 0) == 0);
}

TEST_CASE_METHOD(ApiFixture, "ListTasks: limit 1..10000 (100 when not given), a known status, the submitter's own tasks") {
  for (int i = 0; i < 101; ++i) REQUIRE(SubmitAs(kRoot).ok());
  REQUIRE(SubmitAs(kAlicePrincipal).ok());
  TaskListQuery q;
  CHECK(api.ListTasks(kRoot, q)->size() == 100);
  q.limit = 0;
  CHECK(api.ListTasks(kRoot, q).status().message() == "limit: must be 1..10000, got 0");
  q.limit = 10001;
  CHECK(api.ListTasks(kRoot, q).status().message() == "limit: must be 1..10000, got 10001");
  q.limit = 10000;
  CHECK(api.ListTasks(kRoot, q)->size() == 102);
  CHECK(api.ListTasks(kReaderPrincipal, q)->size() == 102);
  absl::StatusOr<std::vector<pb::Task>> own = api.ListTasks(kAlicePrincipal, q);
  REQUIRE(own.ok());
  REQUIRE(own->size() == 1);
  CHECK((*own)[0].owner() == "alice");
  q.status = static_cast<pb::TaskStatus>(42);
  CHECK(api.ListTasks(kRoot, q).status().message() == "status: unknown TaskStatus value 42");
}

TEST_CASE_METHOD(ApiFixture, "ListTasks filters by the worker that ran the task") {
  auto link = std::make_shared<FakeLink>();
  Join("w1", 1, link);
  std::string ran = Submit("echo");
  std::string queued = Submit("echo");  // waits for the one slot
  REQUIRE(link->assigned.size() == 1);
  TaskListQuery q;
  q.worker_device_id = "w1";
  absl::StatusOr<std::vector<pb::Task>> on_w1 = api.ListTasks(kRoot, q);
  REQUIRE(on_w1.ok());
  REQUIRE(on_w1->size() == 1);
  CHECK((*on_w1)[0].task_id() == ran);
  q.worker_device_id = "w2";
  CHECK(api.ListTasks(kRoot, q)->empty());
}

TEST_CASE_METHOD(ApiFixture, "Workers, drain, stats and metrics through the API") {
  Join("w1", 2, std::make_shared<FakeLink>());
  CHECK(api.ListWorkers(kReaderPrincipal, "")->size() == 1);
  CHECK(api.ListWorkers(kReaderPrincipal, "w1")->size() == 1);
  CHECK(api.ListWorkers(kReaderPrincipal, "nope").status().message() == "no worker with device id 'nope'");
  absl::StatusOr<pb::Worker> drained = api.DrainWorker(kRoot, "w1", true);
  REQUIRE(drained.ok());
  CHECK(drained->drained());
  CHECK(api.DrainWorker(kRoot, "nope", true).status().code() == absl::StatusCode::kNotFound);
  absl::StatusOr<ClusterMetrics> m = api.Metrics(kReaderPrincipal);
  REQUIRE(m.ok());
  CHECK(m->workers.size() == 1);
  CHECK(m->dispatch_latency == &core.dispatch_latency());
  CHECK(api.Stats(kAlicePrincipal).ok());
}

TEST_CASE("A wait timeout is 30 s when not given, else above 0 and at most 300") {
  CHECK(*ClientApi::WaitSeconds(std::nullopt) == 30);
  CHECK(*ClientApi::WaitSeconds(300) == 300);
  CHECK(*ClientApi::WaitSeconds(0.5) == 0.5);
  for (double bad : {0.0, -1.0, 300.5, std::nan("")}) {
    INFO(bad);
    absl::StatusOr<double> s = ClientApi::WaitSeconds(bad);
    CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(s.status().message() == "timeout: expected seconds in (0, 300]");
  }
}

// ---- Task tokens (DESIGN.md "Workflows"): a caller acting as one task attempt ----

// Records what a watch delivers.
class Recorded final : public TaskSink {
 public:
  void OnTask(pb::Task t) override { tasks.push_back(std::move(t)); }
  void Abort(absl::Status) override {}
  std::vector<pb::Task> tasks;
};

// alice's task running on a worker, and the token its attempt was given.
struct TaskCallerFixture : ApiFixture {
  TaskCallerFixture() {
    epoch = Join("w1", 1, link);
    absl::StatusOr<SubmitResult> p = SubmitAs(kAlicePrincipal);
    REQUIRE(p.ok());
    parent = p->task_id;
    REQUIRE(link->assigned.size() == 1);
    token = link->assigned[0].task_token();
    absl::StatusOr<Principal> who = api.Admit(ClientOp::kSubmit, "Bearer " + token, remote);
    REQUIRE(who.ok());
    caller = *who;
  }
  std::string Denied(const std::string& verb) const {
    return "a task token may only " + verb + " tasks of its own subtree (" + parent + ")";
  }

  std::function<Peer()> remote = [] { return Peer{"ipv4:192.0.2.7:5000", false}; };
  std::shared_ptr<FakeLink> link = std::make_shared<FakeLink>();
  uint64_t epoch = 0;
  std::string parent, token;
  Principal caller;
};

TEST_CASE_METHOD(TaskCallerFixture, "Admit: a task token is the task's owner with role submit, from any peer, any tokens") {
  CHECK(caller.role == Role::kSubmit);
  CHECK(caller.name == "alice");
  REQUIRE(caller.task.has_value());
  CHECK(caller.task->task_id == parent);
  CHECK(caller.task->attempt == 1);
  CHECK(caller.task->root_task_id == parent);
  CHECK(caller.task->depth == 0);

  // With client tokens configured the task token still authenticates (a worker forwards it).
  TokenTable tokens = Tokens();
  ClientApi guarded(&core, &tokens);
  absl::StatusOr<Principal> who = guarded.Admit(ClientOp::kGetTask, "Bearer " + token, remote);
  REQUIRE(who.ok());
  CHECK(who->task->task_id == parent);

  for (ClientOp op : {ClientOp::kListWorkers, ClientOp::kGetStats, ClientOp::kMetrics, ClientOp::kDrainWorker}) {
    INFO(static_cast<int>(op));
    absl::StatusOr<Principal> refused = guarded.Admit(op, "Bearer " + token, remote);
    CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(refused.status().message()),
               Catch::StartsWith("a task token (" + parent + ") may not ") &&
                   Catch::EndsWith(": it may only submit children and read, wait for or cancel tasks of its own subtree"));
  }
  CHECK(api.Stats(caller).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.ListWorkers(caller, "").status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.Metrics(caller).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.DrainWorker(caller, "w1", true).status().code() == absl::StatusCode::kPermissionDenied);

  // A forged secret, a malformed token and an ended attempt read alike.
  const std::string invalid = "task token is not valid (its attempt has ended, or it was never issued)";
  std::string forged = token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  CHECK(guarded.Admit(ClientOp::kGetTask, "Bearer " + forged, remote).status().message() == invalid);
  CHECK(api.Admit(ClientOp::kGetTask, "Bearer rct1.nothing", remote).status().message() == invalid);
  Finish("w1", epoch, link->assigned[0]);
  absl::StatusOr<Principal> ended = guarded.Admit(ClientOp::kGetTask, "Bearer " + token, remote);
  CHECK(ended.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(ended.status().message() == invalid);
}

TEST_CASE("A task caller reads, watches and cancels only tasks of its own subtree") {
  Principal who{Role::kSubmit, "alice", TaskCaller{"task-p", 1, "task-r", 1}};
  pb::Task own, child, grandchild, sibling;
  own.set_task_id("task-p");
  child.set_task_id("task-c");
  grandchild.set_task_id("task-g");
  sibling.set_task_id("task-s");
  for (pb::Task* t : {&own, &child, &grandchild, &sibling}) t->set_owner("alice");
  own.add_ancestor_task_ids("task-r");
  child.add_ancestor_task_ids("task-r");
  child.add_ancestor_task_ids("task-p");
  grandchild.add_ancestor_task_ids("task-r");
  grandchild.add_ancestor_task_ids("task-p");
  grandchild.add_ancestor_task_ids("task-c");
  sibling.add_ancestor_task_ids("task-r");
  for (ClientOp op : {ClientOp::kGetTask, ClientOp::kWatchTask, ClientOp::kCancelTask}) {
    INFO(static_cast<int>(op));
    CHECK(TaskAccessFor(who, op)(own).ok());
    CHECK(TaskAccessFor(who, op)(child).ok());
    CHECK(TaskAccessFor(who, op)(grandchild).ok());
    absl::Status refused = TaskAccessFor(who, op)(sibling);
    CHECK(refused.code() == absl::StatusCode::kPermissionDenied);
    CHECK(refused.message() == std::string("a task token may only ") +
                                   (op == ClientOp::kCancelTask ? "cancel" : "read") +
                                   " tasks of its own subtree (task-p)");
  }
  CHECK(InSubtreeOf(grandchild, "task-r"));
  CHECK_FALSE(InSubtreeOf(own, "task-c"));

  // Its submits become children of its task, owned by its task's owner.
  Submitter by = SubmitterFor(who);
  CHECK(by.owner == "alice");
  CHECK(by.parent_task_id == "task-p");
  by = SubmitterFor(Principal{Role::kSubmit, "alice"});
  CHECK(by.parent_task_id.empty());
}

TEST_CASE_METHOD(TaskCallerFixture, "A task caller through the API: its own task yes, others no, each refusal says why") {
  absl::StatusOr<SubmitResult> other = SubmitAs(kAlicePrincipal, "nowhere");  // alice's, not in the subtree
  REQUIRE(other.ok());
  absl::StatusOr<pb::Task> own = api.GetTask(caller, parent);
  REQUIRE(own.ok());
  CHECK(own->attempt_token_sha256().empty());
  absl::StatusOr<pb::Task> refused = api.GetTask(caller, other->task_id);
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(refused.status().message() == Denied("read"));

  auto sink = std::make_shared<Recorded>();
  CHECK(api.Watch(caller, other->task_id, sink).status().message() == Denied("read"));
  std::vector<absl::StatusOr<uint64_t>> all = api.WatchAll(caller, {parent, other->task_id}, sink);
  REQUIRE(all.size() == 2);
  REQUIRE(all[0].ok());
  CHECK(all[1].status().message() == Denied("read"));
  api.Unwatch(parent, *all[0]);

  absl::StatusOr<pb::CancelTaskResponse> cancelled = absl::InternalError("not answered");
  api.Cancel(caller, other->task_id, [&](auto r) { cancelled = std::move(r); });
  CHECK(cancelled.status().message() == Denied("cancel"));
  CHECK(Get(other->task_id).status() == pb::TASK_STATUS_QUEUED);

  TaskListQuery q;
  absl::StatusOr<std::vector<pb::Task>> listed = api.ListTasks(caller, q);
  CHECK(listed.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(listed.status().message() ==
        "a task token may only list tasks of its own subtree (" + parent + "): give parent_task_id");
  q.parent_task_id = other->task_id;
  CHECK(api.ListTasks(caller, q).status().message() == Denied("list"));
  q.parent_task_id = "task-nope";
  CHECK(api.ListTasks(caller, q).status().code() == absl::StatusCode::kNotFound);
  q.parent_task_id = parent;
  CHECK(api.ListTasks(caller, q).ok());

  // A child submit is accepted under the task's owner (the core makes it a child).
  absl::StatusOr<SubmitResult> child = SubmitAs(caller, "nowhere");
  REQUIRE(child.ok());
  CHECK(Get(child->task_id).owner() == "alice");

  // Its own task it may cancel; the error message names the task that did.
  api.Cancel(caller, parent, [&](auto r) { cancelled = std::move(r); });
  REQUIRE(cancelled.ok());
  CHECK(cancelled->cancelled());
  CHECK(Get(parent).error_message() == "cancelled by alice (task " + parent + ")");
}

TEST_CASE_METHOD(ApiFixture, "ListTasks by parent: a malformed parent_task_id is refused for every caller") {
  TaskListQuery q;
  q.parent_task_id = "task x";
  CHECK(api.ListTasks(kRoot, q).status().message() == "parent_task_id: 'task x' is not a task id");
  q.parent_task_id = std::string(129, 'a');
  CHECK(api.ListTasks(kRoot, q).status().message() == "parent_task_id: a task id is at most 128 characters");
  q.parent_task_id = "task-none";
  absl::StatusOr<std::vector<pb::Task>> none = api.ListTasks(kRoot, q);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("No client read shows the token digest, also for records read back from the store") {
  CoordinatorOptions o = Fixture::Options();
  o.finished_cache_tasks = 0;  // finished tasks are read from the store
  Fixture f(o);
  ClientApi api(&f.core, nullptr);
  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = f.Join("w1", 1, link);
  const std::string id = f.Submit("echo");
  REQUIRE(link->assigned.size() == 1);
  CHECK(api.GetTask(kRoot, id)->attempt_token_sha256().empty());  // from memory
  f.Finish("w1", epoch, link->assigned[0]);
  f.PassBackoff();  // lets the cache trim
  REQUIRE(f.core.tasks_in_memory() == 0);
  // Whatever the stored record holds, no client read passes it on.
  absl::StatusOr<pb::Task> read = api.GetTask(kRoot, id);
  REQUIRE(read.ok());
  CHECK(read->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(read->attempt_token_sha256().empty());
  TaskListQuery q;
  absl::StatusOr<std::vector<pb::Task>> listed = api.ListTasks(kRoot, q);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].attempt_token_sha256().empty());
  auto sink = std::make_shared<Recorded>();
  REQUIRE(api.Watch(kRoot, id, sink).ok());
  REQUIRE(sink->tasks.size() == 1);
  CHECK(sink->tasks[0].attempt_token_sha256().empty());
}

}  // namespace
}  // namespace rc::coordinator
