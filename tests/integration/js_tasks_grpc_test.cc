// Published JavaScript tasks over gRPC against a real coordinator (SQLite store): publish,
// run by name, and what the worker is given (the resolved payload); a task token may run
// published tasks as children and list them, but not publish.
#include <catch2/catch.hpp>

#include "common/json_view.h"
#include "coordinator/core/js_tasks.h"
#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/fake_worker.h"

namespace rc::testing {
namespace {

std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

const char* kGreet = R"(/**
 * @task greet
 * @description Says hello.
 * @param {string} input.who - whom to greet
 * @returns {string} the greeting
 */
module.exports = async function execute(input) { return 'hello ' + input.who; };
)";

}  // namespace

TEST_CASE("gRPC: publish, run by name, the worker gets the resolved code, a task token runs but may not publish") {
  Cluster cluster;
  auto stub = pb::ClientService::NewStub(grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials()));
  FakeWorker worker(cluster.address(), "js-1", "js");

  pb::PublishJsTaskRequest publish;
  publish.set_code(kGreet);
  pb::PublishJsTaskResponse published;
  REQUIRE(stub->PublishJsTask(Context().get(), publish, &published).ok());
  CHECK(published.task().name() == "greet");
  CHECK(published.task().version() == 1);
  CHECK(published.task().description() == "Says hello.");
  CHECK(published.task().returns() == "{string} the greeting");
  REQUIRE(published.task().params_size() == 1);
  CHECK(published.task().params(0).name() == "input.who");
  CHECK_FALSE(published.unchanged());
  pb::PublishJsTaskResponse again;
  REQUIRE(stub->PublishJsTask(Context().get(), publish, &again).ok());
  CHECK(again.unchanged());

  pb::SubmitRequest run;
  run.mutable_spec()->set_task_type("js");
  run.mutable_spec()->set_payload(R"({"name": "greet", "input": {"who": "world"}, "memory_mb": 32})");
  pb::SubmitResponse submitted;
  REQUIRE(stub->Submit(Context().get(), run, &submitted).ok());

  std::optional<pb::Assignment> a = worker.NextAssignment();
  REQUIRE(a.has_value());
  CHECK(a->task_id() == submitted.task_id());
  const Json payload = Json::parse(a->payload());
  CHECK(payload["name"] == "greet");
  CHECK(payload["version"] == 1);
  CHECK(payload["sha256"] == coordinator::Sha256Hex(kGreet));
  CHECK(payload["code"] == kGreet);
  CHECK(payload["input"]["who"] == "world");
  CHECK(payload["memory_mb"] == 32);

  // The running task's token: it lists and shows, runs a published task as its child,
  // and may not publish or remove.
  const std::string token = a->task_token();
  pb::ListJsTasksResponse listed;
  REQUIRE(stub->ListJsTasks(Context(token).get(), pb::ListJsTasksRequest(), &listed).ok());
  REQUIRE(listed.tasks_size() == 1);
  CHECK(listed.tasks(0).name() == "greet");
  grpc::Status refused = stub->PublishJsTask(Context(token).get(), publish, &again);
  CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(refused.error_message().rfind("a task token (" + a->task_id() + ") may not publish or remove", 0) == 0);
  pb::RemoveJsTaskRequest remove;
  remove.set_name("greet");
  pb::RemoveJsTaskResponse removed;
  CHECK(stub->RemoveJsTask(Context(token).get(), remove, &removed).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  pb::SubmitRequest child;
  child.mutable_spec()->set_task_type("js");
  child.mutable_spec()->set_payload(R"({"name": "greet", "version": 1, "input": {"who": "child"}})");
  pb::SubmitResponse child_submitted;
  REQUIRE(stub->Submit(Context(token).get(), child, &child_submitted).ok());

  // Removing the name leaves accepted tasks their code; new runs are refused.
  REQUIRE(stub->RemoveJsTask(Context().get(), remove, &removed).ok());
  CHECK(removed.removed_versions() == 1);
  pb::GetTaskRequest get;
  get.set_task_id(child_submitted.task_id());
  pb::Task child_task;
  REQUIRE(stub->GetTask(Context().get(), get, &child_task).ok());
  CHECK(child_task.parent_task_id() == a->task_id());
  CHECK(Json::parse(child_task.spec().payload())["code"] == kGreet);
  pb::SubmitResponse gone;
  grpc::Status not_found = stub->Submit(Context().get(), run, &gone);
  CHECK(not_found.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(not_found.error_message() == "payload.name: no published task 'greet'");
  pb::GetJsTaskRequest show;
  show.set_name("greet");
  pb::JsTask shown;
  CHECK(stub->GetJsTask(Context().get(), show, &shown).error_code() == grpc::StatusCode::NOT_FOUND);

  worker.Finish(*a);
}

}  // namespace rc::testing
