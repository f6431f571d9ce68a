// The same mistakes sent over gRPC and over HTTP get the same refusal: the same status (HTTP's
// code mapped from it) and the same message, word for word, from the one client API
// (coordinator/api). Where the two requests name their list differently ("specs" in
// SubmitBatchRequest, "tasks" in the JSON body) the message names each one's own field.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <functional>

#include "absl/strings/str_cat.h"
#include "common/json_view.h"
#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/fake_worker.h"
#include "tests/integration/parity_fixture.h"

namespace rc::testing {
namespace {

using nlohmann::json;

// The HTTP code the bridge answers for each status (DESIGN.md "Security options", "HTTP bridge").
int HttpCodeOf(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    default: return 500;
  }
}

struct Transports {
  explicit Transports(Cluster& c)
      : stub(pb::ClientService::NewStub(grpc::CreateChannel(c.address(), grpc::InsecureChannelCredentials()))),
        http("127.0.0.1", c.http_port()) {
    http.set_read_timeout(20, 0);
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  // The HTTP answer as a Status: its message the body's "error", its code checked against
  // the mapping of `expected`.
  httplib::Result Http(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    if (method == "GET") return http.Get(path.c_str(), h);
    if (method == "DELETE") return http.Delete(path.c_str(), h);
    return http.Post(path.c_str(), h, body, "application/json");
  }

  std::unique_ptr<pb::ClientService::Stub> stub;
  httplib::Client http;
};

std::string Submitted(Transports& t, const std::string& token) {
  auto r = t.Http("POST", "/tasks", token, R"({"task_type":"echo","requirements":{"required_tags":["nowhere"]}})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  return json::parse(r->body)["task_id"];
}

// One mistake: how gRPC makes it, how HTTP makes it, and the refusal both must give.
struct Case {
  std::string name;
  std::function<grpc::Status(Transports&)> grpc;
  std::function<httplib::Result(Transports&)> http;
  absl::StatusCode code;
  std::string message;       // over gRPC
  std::string http_message;  // over HTTP when the request's own field name differs; "" = the same
};

}  // namespace

TEST_CASE("gRPC and HTTP refuse the same mistakes with the same status and the same message") {
  Cluster cluster(WithTokens());
  Transports t(cluster);
  const std::string alices = Submitted(t, kAlice);
  const std::string denied_read =
      "token 'bob' (role submit) may not read this task: it belongs to another submitter";

  std::vector<Case> cases = {
      {"no token",
       [](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id("task-x");
         pb::Task out;
         return t.stub->GetTask(t.Context("").get(), r, &out);
       },
       [](Transports& t) { return t.Http("GET", "/tasks/task-x", ""); }, absl::StatusCode::kUnauthenticated,
       "", ""},
      {"a wrong token",
       [](Transports& t) {
         pb::Stats out;
         return t.stub->GetStats(t.Context("not-a-token-0123456789").get(), pb::GetStatsRequest(), &out);
       },
       [](Transports& t) { return t.Http("GET", "/stats", "not-a-token-0123456789"); },
       absl::StatusCode::kUnauthenticated, "", ""},
      {"the read role submits",
       [](Transports& t) {
         pb::SubmitRequest r;
         r.mutable_spec()->set_task_type("echo");
         pb::SubmitResponse out;
         return t.stub->Submit(t.Context(kReader).get(), r, &out);
       },
       [](Transports& t) { return t.Http("POST", "/tasks", kReader, R"({"task_type":"echo"})"); },
       absl::StatusCode::kPermissionDenied, "token 'auditor' (role read) may not submit tasks: the read role is read-only",
       ""},
      {"the read role submits and watches",
       [](Transports& t) {
         pb::SubmitRequest r;
         r.mutable_spec()->set_task_type("echo");
         auto ctx = t.Context(kReader);
         auto reader = t.stub->SubmitAndWatch(ctx.get(), r);
         pb::Task out;
         while (reader->Read(&out)) {
         }
         return reader->Finish();
       },
       [](Transports& t) { return t.Http("POST", "/tasks", kReader, R"({"task_type":"echo"})"); },
       absl::StatusCode::kPermissionDenied, "token 'auditor' (role read) may not submit tasks: the read role is read-only",
       ""},
      {"a submitter drains a worker",
       [](Transports& t) {
         pb::DrainWorkerRequest r;
         r.set_device_id("w1");
         pb::Worker out;
         return t.stub->DrainWorker(t.Context(kAlice).get(), r, &out);
       },
       [](Transports& t) { return t.Http("POST", "/workers/w1/drain", kAlice); }, absl::StatusCode::kPermissionDenied,
       "token 'alice' (role submit) may not drain workers: that needs the admin role", ""},
      {"an unknown task id",
       [](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id("task-nope");
         pb::Task out;
         return t.stub->GetTask(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("GET", "/tasks/task-nope", kAdmin); }, absl::StatusCode::kNotFound,
       "no task with id 'task-nope'", ""},
      {"cancel of an unknown task id",
       [](Transports& t) {
         pb::CancelTaskRequest r;
         r.set_task_id("task-nope");
         pb::CancelTaskResponse out;
         return t.stub->CancelTask(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("DELETE", "/tasks/task-nope", kAdmin); }, absl::StatusCode::kNotFound,
       "no task with id 'task-nope'", ""},
      {"reading another submitter's task",
       [&](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id(alices);
         pb::Task out;
         return t.stub->GetTask(t.Context(kBob).get(), r, &out);
       },
       [&](Transports& t) { return t.Http("GET", "/tasks/" + alices, kBob); }, absl::StatusCode::kPermissionDenied,
       denied_read, ""},
      {"waiting for another submitter's task",
       [&](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id(alices);
         auto ctx = t.Context(kBob);
         auto reader = t.stub->WatchTask(ctx.get(), r);
         pb::Task out;
         for (int i = 0; i < 100 && reader->Read(&out);) ++i;
         return reader->Finish();
       },
       [&](Transports& t) { return t.Http("GET", "/tasks/" + alices + "/wait?timeout=5", kBob); },
       absl::StatusCode::kPermissionDenied, denied_read, ""},
      {"cancelling another submitter's task",
       [&](Transports& t) {
         pb::CancelTaskRequest r;
         r.set_task_id(alices);
         pb::CancelTaskResponse out;
         return t.stub->CancelTask(t.Context(kBob).get(), r, &out);
       },
       [&](Transports& t) { return t.Http("DELETE", "/tasks/" + alices, kBob); }, absl::StatusCode::kPermissionDenied,
       "token 'bob' (role submit) may not cancel this task: it belongs to another submitter", ""},
      {"a list limit below 1",
       [](Transports& t) {
         pb::ListTasksRequest r;
         r.set_limit(-1);
         pb::ListTasksResponse out;
         return t.stub->ListTasks(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("GET", "/tasks?limit=-1", kAdmin); }, absl::StatusCode::kInvalidArgument,
       "limit: must be 1..10000, got -1", ""},
      {"a list limit above 10000",
       [](Transports& t) {
         pb::ListTasksRequest r;
         r.set_limit(10001);
         pb::ListTasksResponse out;
         return t.stub->ListTasks(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("GET", "/tasks?limit=10001", kAdmin); }, absl::StatusCode::kInvalidArgument,
       "limit: must be 1..10000, got 10001", ""},
      {"an unknown worker",
       [](Transports& t) {
         pb::ListWorkersRequest r;
         r.set_device_id("nope");
         pb::ListWorkersResponse out;
         return t.stub->ListWorkers(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("GET", "/workers?device_id=nope", kAdmin); }, absl::StatusCode::kNotFound,
       "no worker with device id 'nope'", ""},
      {"draining an unknown worker",
       [](Transports& t) {
         pb::DrainWorkerRequest r;
         r.set_device_id("nope");
         pb::Worker out;
         return t.stub->DrainWorker(t.Context(kAdmin).get(), r, &out);
       },
       [](Transports& t) { return t.Http("POST", "/workers/nope/drain", kAdmin); }, absl::StatusCode::kNotFound, "",
       ""},
      {"a bad field in a single submit",
       [](Transports& t) {
         pb::SubmitRequest r;
         r.mutable_spec()->set_task_type("echo");
         r.mutable_spec()->mutable_requirements()->set_timeout_seconds(-1);
         pb::SubmitResponse out;
         return t.stub->Submit(t.Context(kAlice).get(), r, &out);
       },
       [](Transports& t) {
         return t.Http("POST", "/tasks", kAlice, R"({"task_type":"echo","requirements":{"timeout_seconds":-1}})");
       },
       absl::StatusCode::kInvalidArgument, "requirements.timeout_seconds: must be greater than 0, got -1", ""},
      {"a negative min_cpu_cores (refused by the JSON reader on HTTP, by the core on gRPC)",
       [](Transports& t) {
         pb::SubmitRequest r;
         r.mutable_spec()->set_task_type("echo");
         r.mutable_spec()->mutable_requirements()->set_min_cpu_cores(-1);
         pb::SubmitResponse out;
         return t.stub->Submit(t.Context(kAlice).get(), r, &out);
       },
       [](Transports& t) {
         return t.Http("POST", "/tasks", kAlice, R"({"task_type":"echo","requirements":{"min_cpu_cores":-1}})");
       },
       absl::StatusCode::kInvalidArgument, "requirements.min_cpu_cores: must be 0..2147483647, got -1", ""},
      {"an empty batch",
       [](Transports& t) {
         pb::SubmitBatchResponse out;
         return t.stub->SubmitBatch(t.Context(kAlice).get(), pb::SubmitBatchRequest(), &out);
       },
       [](Transports& t) { return t.Http("POST", "/tasks/batch", kAlice, R"({"tasks":[]})"); },
       absl::StatusCode::kInvalidArgument, "specs: a batch holds 1..10000 tasks, got 0",
       "tasks: a batch holds 1..10000 tasks, got 0"},
      {"a batch over 10000",
       [](Transports& t) {
         pb::SubmitBatchRequest r;
         for (int i = 0; i < 10001; ++i) r.add_specs()->set_task_type("echo");
         pb::SubmitBatchResponse out;
         return t.stub->SubmitBatch(t.Context(kAlice).get(), r, &out);
       },
       [](Transports& t) {
         std::string body = R"({"tasks":[)";
         for (int i = 0; i < 10001; ++i) absl::StrAppend(&body, i == 0 ? "" : ",", R"({"task_type":"echo"})");
         return t.Http("POST", "/tasks/batch", kAlice, body + "]}");
       },
       absl::StatusCode::kInvalidArgument, "specs: a batch holds 1..10000 tasks, got 10001",
       "tasks: a batch holds 1..10000 tasks, got 10001"},
  };

  for (Case& c : cases) {
    INFO(c.name);
    grpc::Status g = c.grpc(t);
    httplib::Result h = c.http(t);
    REQUIRE(h);
    const std::string h_message = json::parse(h->body)["error"];
    CHECK(g.error_code() == static_cast<grpc::StatusCode>(c.code));
    CHECK(h->status == HttpCodeOf(c.code));
    if (c.message.empty()) {
      CHECK(g.error_message() == h_message);  // whatever the core says, both say it
    } else {
      CHECK(g.error_message() == c.message);
      CHECK(h_message == (c.http_message.empty() ? c.message : c.http_message));
    }
  }

  SECTION("a bad status filter: the same code and field") {
    pb::ListTasksRequest r;
    r.set_status(static_cast<pb::TaskStatus>(42));  // a number over gRPC, a name over HTTP
    pb::ListTasksResponse out;
    grpc::Status g = t.stub->ListTasks(t.Context(kAdmin).get(), r, &out);
    httplib::Result h = t.Http("GET", "/tasks?status=done", kAdmin);
    REQUIRE(h);
    CHECK(g.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(h->status == 400);
    CHECK(g.error_message().rfind("status: unknown", 0) == 0);
    CHECK(std::string(json::parse(h->body)["error"]).rfind("status: unknown", 0) == 0);
  }
}

TEST_CASE("gRPC and HTTP name a refused batch entry alike, each by its own request's field") {
  Cluster cluster(WithTokens());
  Transports t(cluster);
  pb::SubmitBatchRequest r;
  r.add_specs()->set_task_type("echo");
  pb::TaskSpec* bad = r.add_specs();
  bad->set_task_type("echo");
  bad->mutable_requirements()->set_timeout_seconds(-1);
  pb::SubmitBatchResponse out;
  REQUIRE(t.stub->SubmitBatch(t.Context(kAlice).get(), r, &out).ok());
  REQUIRE(out.results_size() == 2);
  CHECK(out.results(0).has_accepted());
  CHECK(out.results(1).error_code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(out.results(1).error_message() == "specs[1].requirements.timeout_seconds: must be greater than 0, got -1");

  httplib::Result h = t.Http("POST", "/tasks/batch", kAlice,
                             R"({"tasks":[{"task_type":"echo"},{"task_type":"echo","requirements":{"timeout_seconds":-1}}]})");
  REQUIRE(h);
  CHECK(h->status == 201);
  json body = json::parse(h->body);
  REQUIRE(body["tasks"].size() == 2);
  CHECK(body["tasks"][0].contains("task_id"));
  CHECK(body["tasks"][1]["error"] == "tasks[1].requirements.timeout_seconds: must be greater than 0, got -1");
}

TEST_CASE("HTTP takes a batch of 10000, as gRPC does") {
  Cluster cluster;
  httplib::Client http("127.0.0.1", cluster.http_port());
  http.set_read_timeout(60, 0);
  std::string body = R"({"tasks":[)";
  for (int i = 0; i < 10000; ++i) absl::StrAppend(&body, i == 0 ? "" : ",", R"({"task_type":"echo"})");
  httplib::Result h = http.Post("/tasks/batch", body + "]}", "application/json");
  REQUIRE(h);
  CHECK(h->status == 201);
  json out = json::parse(h->body);
  REQUIRE(out["tasks"].size() == 10000);
  CHECK(out["tasks"][9999].contains("task_id"));
}

TEST_CASE("gRPC and HTTP both filter tasks by the worker that ran them") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2));
  Transports t(cluster);
  pb::TaskSpec echo;
  echo.set_task_type("echo");
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<pb::SubmitResponse> s = cluster.client().Submit(echo);
    REQUIRE(s.ok());
    REQUIRE(cluster.client().Wait(s->task_id(), absl::Seconds(20)).ok());
    ids.push_back(s->task_id());
  }
  // One the worker never ran: queued for a tag nobody has.
  echo.mutable_requirements()->add_required_tags("nowhere");
  REQUIRE(cluster.client().Submit(echo).ok());

  for (const auto& [device, want] : std::vector<std::pair<std::string, size_t>>{{"w1", 2}, {"nope", 0}}) {
    INFO(device);
    pb::ListTasksRequest r;
    r.set_worker_device_id(device);
    pb::ListTasksResponse out;
    REQUIRE(t.stub->ListTasks(t.Context("").get(), r, &out).ok());
    CHECK(static_cast<size_t>(out.tasks_size()) == want);
    for (const pb::Task& task : out.tasks()) CHECK(task.worker_device_id() == "w1");

    httplib::Result h = t.Http("GET", "/tasks?worker_device_id=" + device, "");
    REQUIRE(h);
    REQUIRE(h->status == 200);
    json listed = json::parse(h->body)["tasks"];
    CHECK(listed.size() == want);
    for (const json& task : listed) CHECK(task["worker_device_id"] == "w1");
  }
}

TEST_CASE("gRPC and HTTP take a task token alike: the same answers inside its subtree, the same refusals outside") {
  Cluster cluster(WithTokens());
  Transports t(cluster);
  auto r = t.Http("POST", "/tasks", kAlice, R"({"task_type":"echo"})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  const std::string parent = json::parse(r->body)["task_id"];
  const std::string other = Submitted(t, kAlice);
  FakeWorker worker(cluster.address(), "fake-1", "echo");
  std::optional<pb::Assignment> a = worker.NextAssignment();
  REQUIRE(a.has_value());
  REQUIRE(a->task_id() == parent);
  const std::string token = a->task_token();

  pb::GetTaskRequest own;
  own.set_task_id(parent);
  pb::Task read;
  REQUIRE(t.stub->GetTask(t.Context(token).get(), own, &read).ok());
  httplib::Result h = t.Http("GET", "/tasks/" + parent, token);
  REQUIRE(h);
  CHECK(h->status == 200);
  CHECK(json::parse(h->body)["task_id"] == parent);
  CHECK(json::parse(h->body)["owner"] == "alice");

  std::vector<Case> cases = {
      {"a task token reads outside its subtree",
       [&](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id(other);
         pb::Task out;
         return t.stub->GetTask(t.Context(token).get(), r, &out);
       },
       [&](Transports& t) { return t.Http("GET", "/tasks/" + other, token); }, absl::StatusCode::kPermissionDenied,
       "a task token may only read tasks of its own subtree (" + parent + ")", ""},
      {"a task token waits outside its subtree",
       [&](Transports& t) {
         pb::GetTaskRequest r;
         r.set_task_id(other);
         auto ctx = t.Context(token);
         auto reader = t.stub->WatchTask(ctx.get(), r);
         pb::Task out;
         for (int i = 0; i < 100 && reader->Read(&out);) ++i;
         return reader->Finish();
       },
       [&](Transports& t) { return t.Http("GET", "/tasks/" + other + "/wait?timeout=5", token); },
       absl::StatusCode::kPermissionDenied, "a task token may only read tasks of its own subtree (" + parent + ")", ""},
      {"a task token cancels outside its subtree",
       [&](Transports& t) {
         pb::CancelTaskRequest r;
         r.set_task_id(other);
         pb::CancelTaskResponse out;
         return t.stub->CancelTask(t.Context(token).get(), r, &out);
       },
       [&](Transports& t) { return t.Http("DELETE", "/tasks/" + other, token); }, absl::StatusCode::kPermissionDenied,
       "a task token may only cancel tasks of its own subtree (" + parent + ")", ""},
      {"a task token asks for stats",
       [&](Transports& t) {
         pb::Stats out;
         return t.stub->GetStats(t.Context(token).get(), pb::GetStatsRequest(), &out);
       },
       [&](Transports& t) { return t.Http("GET", "/stats", token); }, absl::StatusCode::kPermissionDenied,
       "a task token (" + parent +
           ") may not read workers and stats: it may only submit children and read, wait for or cancel tasks of its "
           "own subtree",
       ""},
      {"a task token drains a worker",
       [&](Transports& t) {
         pb::DrainWorkerRequest r;
         r.set_device_id("fake-1");
         pb::Worker out;
         return t.stub->DrainWorker(t.Context(token).get(), r, &out);
       },
       [&](Transports& t) { return t.Http("POST", "/workers/fake-1/drain", token); },
       absl::StatusCode::kPermissionDenied,
       "a task token (" + parent +
           ") may not drain workers: it may only submit children and read, wait for or cancel tasks of its own subtree",
       ""},
      {"a task token lists tasks without a parent",
       [&](Transports& t) {
         pb::ListTasksResponse out;
         return t.stub->ListTasks(t.Context(token).get(), pb::ListTasksRequest(), &out);
       },
       [&](Transports& t) { return t.Http("GET", "/tasks", token); }, absl::StatusCode::kPermissionDenied,
       "a task token may only list tasks of its own subtree (" + parent + "): give parent_task_id", ""},
      {"a forged task token",
       [&](Transports& t) {
         pb::Task out;
         return t.stub->GetTask(t.Context(token.substr(0, token.size() - 1) + "0").get(), own, &out);
       },
       [&](Transports& t) { return t.Http("GET", "/tasks/" + parent, token.substr(0, token.size() - 1) + "0"); },
       absl::StatusCode::kUnauthenticated, "task token is not valid (its attempt has ended, or it was never issued)",
       ""},
  };
  if (token.back() == '0') cases.pop_back();  // the forgery would be the token itself
  for (Case& c : cases) {
    INFO(c.name);
    grpc::Status g = c.grpc(t);
    httplib::Result h = c.http(t);
    REQUIRE(h);
    CHECK(g.error_code() == static_cast<grpc::StatusCode>(c.code));
    CHECK(h->status == HttpCodeOf(c.code));
    CHECK(g.error_message() == c.message);
    CHECK(std::string(json::parse(h->body)["error"]) == c.message);
  }

  worker.Finish(*a);
  REQUIRE(Eventually([&] {
    pb::Task done;
    return t.stub->GetTask(t.Context(kAdmin).get(), own, &done).ok() && done.status() == pb::TASK_STATUS_SUCCESS;
  }));
  grpc::Status g = t.stub->GetTask(t.Context(token).get(), own, &read);
  h = t.Http("GET", "/tasks/" + parent, token);
  REQUIRE(h);
  CHECK(g.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(h->status == 401);
  CHECK(g.error_message() == "task token is not valid (its attempt has ended, or it was never issued)");
  CHECK(std::string(json::parse(h->body)["error"]) == g.error_message());
}

}  // namespace rc::testing
