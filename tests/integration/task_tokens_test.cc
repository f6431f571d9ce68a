// Task tokens end to end over gRPC (DESIGN.md "Workflows"): the token a real assignment
// carries lets its task submit and read its own subtree, is refused outside it and for
// the cluster's own calls, and is void once the attempt ends.
#include <catch2/catch.hpp>

#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/fake_worker.h"

namespace rc::testing {
namespace {

const std::string kAlice = "alice-token-0123456789abcdef";
const std::string kAdmin = "admin-token-0123456789abcdef";

CoordinatorConfig WithTokens() {
  CoordinatorConfig c = Cluster::FastConfig();
  c.client_tokens = {"admin " + kAdmin + " root", "submit " + kAlice + " alice"};
  return c;
}

struct Calls {
  explicit Calls(const Cluster& c)
      : stub(pb::ClientService::NewStub(grpc::CreateChannel(c.address(), grpc::InsecureChannelCredentials()))) {}

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  grpc::Status Submit(const std::string& token, const std::string& tag, std::string* id) {
    pb::SubmitRequest r;
    r.mutable_spec()->set_task_type("echo");
    if (!tag.empty()) r.mutable_spec()->mutable_requirements()->add_required_tags(tag);
    pb::SubmitResponse out;
    grpc::Status s = stub->Submit(Context(token).get(), r, &out);
    *id = out.task_id();
    return s;
  }
  grpc::Status Get(const std::string& token, const std::string& id, pb::Task* out) {
    pb::GetTaskRequest r;
    r.set_task_id(id);
    return stub->GetTask(Context(token).get(), r, out);
  }
  grpc::Status Watch(const std::string& token, const std::string& id) {
    pb::GetTaskRequest r;
    r.set_task_id(id);
    auto ctx = Context(token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    auto reader = stub->WatchTask(ctx.get(), r);
    pb::Task t;
    for (int i = 0; i < 100 && reader->Read(&t);) ++i;
    return reader->Finish();
  }
  grpc::Status List(const std::string& token, const std::string& parent, pb::ListTasksResponse* out) {
    pb::ListTasksRequest r;
    r.set_parent_task_id(parent);
    return stub->ListTasks(Context(token).get(), r, out);
  }
  grpc::Status Cancel(const std::string& token, const std::string& id) {
    pb::CancelTaskRequest r;
    r.set_task_id(id);
    pb::CancelTaskResponse out;
    return stub->CancelTask(Context(token).get(), r, &out);
  }

  std::unique_ptr<pb::ClientService::Stub> stub;
};

}  // namespace

TEST_CASE("A real assignment's task token: its subtree yes, anything else no, nothing once the attempt ends") {
  Cluster cluster(WithTokens());
  Calls calls(cluster);
  std::string parent, other;
  REQUIRE(calls.Submit(kAlice, "", &parent).ok());
  REQUIRE(calls.Submit(kAlice, "nowhere", &other).ok());  // alice's too, but never assigned
  FakeWorker worker(cluster.address(), "fake-1", "echo");
  std::optional<pb::Assignment> a = worker.NextAssignment();
  REQUIRE(a.has_value());
  REQUIRE(a->task_id() == parent);
  const std::string token = a->task_token();
  REQUIRE(token.rfind("rct1." + parent + ".1.", 0) == 0);
  CHECK(a->root_task_id() == parent);
  CHECK(a->depth() == 0);

  // Its own task, as alice's, without the digest.
  pb::Task own;
  REQUIRE(calls.Get(token, parent, &own).ok());
  CHECK(own.owner() == "alice");
  CHECK(own.attempt_token_sha256().empty());
  pb::ListTasksResponse listed;
  CHECK(calls.List(token, parent, &listed).ok());

  // A submit is accepted, under the task's owner.
  std::string child;
  REQUIRE(calls.Submit(token, "nowhere", &child).ok());
  pb::Task seen;
  REQUIRE(calls.Get(kAdmin, child, &seen).ok());
  CHECK(seen.owner() == "alice");

  // Outside its subtree: refused naming why.
  const std::string outside = "a task token may only read tasks of its own subtree (" + parent + ")";
  grpc::Status s = calls.Get(token, other, &seen);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message() == outside);
  s = calls.Watch(token, other);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message() == outside);
  s = calls.Cancel(token, other);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message() == "a task token may only cancel tasks of its own subtree (" + parent + ")");
  s = calls.List(token, other, &listed);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message() == "a task token may only list tasks of its own subtree (" + parent + ")");
  s = calls.List(token, "", &listed);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  pb::Stats stats;
  s = calls.stub->GetStats(calls.Context(token).get(), pb::GetStatsRequest(), &stats);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message() == "a task token (" + parent +
                                 ") may not read workers and stats: it may only submit children and read, wait for "
                                 "or cancel tasks of its own subtree");
  pb::ListWorkersResponse workers;
  s = calls.stub->ListWorkers(calls.Context(token).get(), pb::ListWorkersRequest(), &workers);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  pb::Task still;
  REQUIRE(calls.Get(kAdmin, other, &still).ok());
  CHECK(still.status() == pb::TASK_STATUS_QUEUED);  // the refused cancel changed nothing

  // The attempt ends: the token is void for every call.
  worker.Finish(*a);
  REQUIRE(Eventually([&] {
    pb::Task t;
    return calls.Get(kAdmin, parent, &t).ok() && t.status() == pb::TASK_STATUS_SUCCESS;
  }));
  const std::string invalid = "task token is not valid (its attempt has ended, or it was never issued)";
  s = calls.Get(token, parent, &seen);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message() == invalid);
  std::string late;
  s = calls.Submit(token, "nowhere", &late);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message() == invalid);
}

TEST_CASE("A task token's submits are children it may read, list, wait for and cancel", "[graph]") {
  Cluster cluster(WithTokens());
  Calls calls(cluster);
  std::string parent;
  REQUIRE(calls.Submit(kAlice, "", &parent).ok());
  FakeWorker worker(cluster.address(), "fake-1", "echo");
  std::optional<pb::Assignment> a = worker.NextAssignment();
  REQUIRE(a.has_value());
  const std::string token = a->task_token();

  std::string child;
  REQUIRE(calls.Submit(token, "nowhere", &child).ok());
  pb::Task seen;
  REQUIRE(calls.Get(token, child, &seen).ok());
  CHECK(seen.parent_task_id() == parent);
  CHECK(seen.root_task_id() == parent);
  CHECK(seen.depth() == 1);
  CHECK(seen.owner() == "alice");
  pb::ListTasksResponse listed;
  REQUIRE(calls.List(token, parent, &listed).ok());
  REQUIRE(listed.tasks_size() == 1);
  CHECK(listed.tasks(0).task_id() == child);
  CHECK(calls.List(token, child, &listed).ok());  // a descendant may be the parent asked for
  CHECK(calls.Cancel(token, child).ok());
  CHECK(calls.Watch(token, child).ok());  // ended: the stream sends it and closes
}

}  // namespace rc::testing
