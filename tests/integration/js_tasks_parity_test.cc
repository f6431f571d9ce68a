// Published JavaScript tasks (issue 16): each call made over gRPC and on the server's client API
// directly gets the same answer, refusals word for word.
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/parity_fixture.h"

namespace rc::testing {
namespace {

// One published-task call made over gRPC and made on the server's client API directly
// (admitted from the same bearer token, as the gRPC service admits it).
struct JsCase {
  std::string name;
  std::function<grpc::Status()> grpc;
  std::function<absl::Status()> api;
  absl::StatusCode code;
  std::string message;
};

absl::StatusOr<Principal> AdmitAs(coordinator::ClientApi& api, coordinator::ClientOp op,
                                               const std::string& token) {
  return api.Admit(op, "Bearer " + token, [] { return coordinator::Peer{"ipv4:127.0.0.1:1", false}; });
}

std::string JsModule(const std::string& name, const std::string& body = "return input;") {
  return "/** @task " + name + "\n * @param {number} [input.n] - n */\nmodule.exports = (input) => { " + body + " };\n";
}

}  // namespace

TEST_CASE("gRPC answers the published-task calls as the client API does, refusals word for word") {
  using coordinator::ClientOp;
  const CoordinatorConfig config = WithTokens();
  auto started = coordinator::CoordinatorServer::Start(config);
  REQUIRE(started.ok());
  std::unique_ptr<coordinator::CoordinatorServer> server = *std::move(started);
  coordinator::ClientApi& api = *server->api();
  auto stub = pb::ClientService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()), grpc::InsecureChannelCredentials()));
  auto context = [](const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  };
  auto publish_grpc = [&](const std::string& token, const std::string& code, const std::string& name = "") {
    pb::PublishJsTaskRequest r;
    r.set_code(code);
    r.set_name(name);
    pb::PublishJsTaskResponse out;
    return stub->PublishJsTask(context(token).get(), r, &out);
  };
  auto publish_api = [&](const std::string& token, const std::string& code, const std::string& name = "") {
    absl::StatusOr<Principal> who = AdmitAs(api, ClientOp::kPublishJsTask, token);
    if (!who.ok()) return who.status();
    pb::PublishJsTaskRequest r;
    r.set_code(code);
    r.set_name(name);
    return api.PublishJsTask(*who, r).status();
  };
  auto get_grpc = [&](const std::string& token, const std::string& name, int version, pb::JsTask* out) {
    pb::GetJsTaskRequest r;
    r.set_name(name);
    r.set_version(version);
    return stub->GetJsTask(context(token).get(), r, out);
  };
  auto get_api = [&](const std::string& token, const std::string& name, int version) -> absl::StatusOr<pb::JsTask> {
    absl::StatusOr<Principal> who = AdmitAs(api, ClientOp::kReadJsTasks, token);
    if (!who.ok()) return who.status();
    return api.GetJsTask(*who, name, version);
  };
  auto remove_grpc = [&](const std::string& token, const std::string& name, int version) {
    pb::RemoveJsTaskRequest r;
    r.set_name(name);
    r.set_version(version);
    pb::RemoveJsTaskResponse out;
    return stub->RemoveJsTask(context(token).get(), r, &out);
  };
  auto remove_api = [&](const std::string& token, const std::string& name, int version) {
    absl::StatusOr<Principal> who = AdmitAs(api, ClientOp::kPublishJsTask, token);
    if (!who.ok()) return who.status();
    return api.RemoveJsTask(*who, name, version).status();
  };
  auto run_grpc = [&](const std::string& token, const std::string& payload) {
    pb::SubmitRequest r;
    r.mutable_spec()->set_task_type("js");
    r.mutable_spec()->set_payload(payload);
    pb::SubmitResponse out;
    return stub->Submit(context(token).get(), r, &out);
  };
  auto run_api = [&](const std::string& token, const std::string& payload) {
    absl::StatusOr<Principal> who = AdmitAs(api, ClientOp::kSubmit, token);
    if (!who.ok()) return who.status();
    pb::TaskSpec spec;
    spec.set_task_type("js");
    spec.set_payload(payload);
    absl::Notification answered;
    absl::Status out;
    api.Submit(*who, spec, [&](absl::StatusOr<coordinator::SubmitResult> r) {
      out = r.status();
      answered.Notify();
    });
    REQUIRE(answered.WaitForNotificationWithTimeout(absl::Seconds(20)));
    return out;
  };

  // Alice owns "shared" (two versions), published over gRPC.
  REQUIRE(publish_grpc(kAlice, JsModule("shared")).ok());
  REQUIRE(publish_grpc(kAlice, JsModule("shared", "return 2;")).ok());

  const std::vector<JsCase> cases = {
      {"publish without @task", [&]() { return publish_grpc(kAlice, "module.exports = () => 1;"); },
       [&]() { return publish_api(kAlice, "module.exports = () => 1;"); },
       absl::StatusCode::kInvalidArgument, "code: no JSDoc @task tag (start the file with /** @task NAME ... */)"},
      {"publish a bad name", [&]() { return publish_grpc(kAlice, JsModule("x"), "-x"); },
       [&]() { return publish_api(kAlice, JsModule("x"), "-x"); },
       absl::StatusCode::kInvalidArgument, "name: '-x' must not start with '.' or '-'"},
      {"the read role publishes", [&]() { return publish_grpc(kReader, JsModule("r")); },
       [&]() { return publish_api(kReader, JsModule("r")); },
       absl::StatusCode::kPermissionDenied,
       "token 'auditor' (role read) may not publish or remove published js tasks: the read role is read-only"},
      {"another submitter publishes alice's name",
       [&]() { return publish_grpc(kBob, JsModule("shared", "return 'bob';")); },
       [&]() { return publish_api(kBob, JsModule("shared", "return 'bob';")); },
       absl::StatusCode::kPermissionDenied,
       "name: published task 'shared' belongs to 'alice' (its first publisher); only it or an admin may publish or "
       "remove it"},
      {"another submitter removes it", [&]() { return remove_grpc(kBob, "shared", 0); },
       [&]() { return remove_api(kBob, "shared", 0); }, absl::StatusCode::kPermissionDenied,
       "name: published task 'shared' belongs to 'alice' (its first publisher); only it or an admin may publish or "
       "remove it"},
      {"get an unknown name",
       [&]() {
         pb::JsTask out;
         return get_grpc(kReader, "nope", 0, &out);
       },
       [&]() { return get_api(kReader, "nope", 0).status(); }, absl::StatusCode::kNotFound,
       "no published task 'nope'"},
      {"get a missing version",
       [&]() {
         pb::JsTask out;
         return get_grpc(kReader, "shared", 7, &out);
       },
       [&]() { return get_api(kReader, "shared", 7).status(); }, absl::StatusCode::kNotFound,
       "published task 'shared' has no version 7"},
      {"remove a missing version", [&]() { return remove_grpc(kAdmin, "shared", 9); },
       [&]() { return remove_api(kAdmin, "shared", 9); }, absl::StatusCode::kNotFound,
       "published task 'shared' has no version 9"},
      {"run an unknown name", [&]() { return run_grpc(kBob, R"({"name": "nope"})"); },
       [&]() { return run_api(kBob, R"({"name": "nope"})"); }, absl::StatusCode::kNotFound,
       "payload.name: no published task 'nope'"},
      {"run with code and name", [&]() { return run_grpc(kBob, R"({"name": "shared", "code": "x"})"); },
       [&]() { return run_api(kBob, R"({"name": "shared", "code": "x"})"); },
       absl::StatusCode::kInvalidArgument,
       "payload.code: give either code (a module's text) or name (a published task), not both"},
      {"run with a bad memory_mb", [&]() { return run_grpc(kBob, R"({"name": "shared", "memory_mb": 0})"); },
       [&]() { return run_api(kBob, R"({"name": "shared", "memory_mb": 0})"); },
       absl::StatusCode::kInvalidArgument, "payload.memory_mb: must be an integer 1..2048 (MiB), got 0"},
  };
  for (const JsCase& c : cases) {
    INFO(c.name);
    grpc::Status g = c.grpc();
    absl::Status a = c.api();
    CHECK(g.error_code() == static_cast<grpc::StatusCode>(c.code));
    CHECK(a.code() == c.code);
    CHECK(g.error_message() == c.message);
    CHECK(std::string(a.message()) == c.message);
  }

  // The answers alike too: the list and one version with its code.
  pb::ListJsTasksResponse listed;
  REQUIRE(stub->ListJsTasks(context(kReader).get(), pb::ListJsTasksRequest(), &listed).ok());
  absl::StatusOr<Principal> reader = AdmitAs(api, ClientOp::kReadJsTasks, kReader);
  REQUIRE(reader.ok());
  absl::StatusOr<std::vector<pb::JsTask>> direct = api.ListJsTasks(*reader);
  REQUIRE(direct.ok());
  REQUIRE(listed.tasks_size() == 1);
  REQUIRE(direct->size() == 1);
  CHECK(listed.tasks(0).SerializeAsString() == (*direct)[0].SerializeAsString());
  CHECK(listed.tasks(0).version() == 2);
  CHECK(listed.tasks(0).versions() == 2);
  CHECK(listed.tasks(0).code().empty());
  pb::JsTask first;
  REQUIRE(get_grpc(kBob, "shared", 1, &first).ok());
  CHECK(first.code() == JsModule("shared"));
  CHECK(first.SerializeAsString() == get_api(kBob, "shared", 1)->SerializeAsString());

  server->Shutdown();
  server.reset();
  std::filesystem::remove_all(config.data_dir);
}

}  // namespace rc::testing
