// Completing a running attempt from outside, end to end (DESIGN.md "Browser automation"):
// gRPC CompleteTask and HTTP POST /tasks/{id}/complete with the attempt's own token, the
// refusals of every other caller, and the completion travelling coordinator -> worker ->
// the attempt's inbox, where a handler waiting for it ends the attempt with it (reported,
// signed, like any end). Also through the task's socket (the worker's gateway) and the CLI.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/verify.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/parity_fixture.h"
#include "tests/unit/await_callback_handler.h"
#include "worker/execution/executor.h"
#include "worker/gateway/task_gateway.h"
#include "worker/session/outbox.h"
#include "worker/session/session.h"
#include "worker/worker_key.h"

namespace rc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A worker made of one stream that records what the coordinator sends it: Registered,
// assignments, completions. Every read is bounded by the stream's deadline.
class StreamWorker {
 public:
  StreamWorker(const std::string& address, const std::string& device, int slots)
      : stub_(pb::WorkerService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Connect(&ctx_);
    pb::WorkerMessage hello;
    pb::Capabilities* c = hello.mutable_register_()->mutable_capabilities();
    c->set_device_id(device);
    c->set_slots(slots);
    c->set_platform("linux");
    c->set_cpu_cores(1);
    c->add_task_types("echo");
    stream_->Write(hello);
  }
  ~StreamWorker() { Close(); }
  void Close() {
    if (closed_) return;
    closed_ = true;
    ctx_.TryCancel();
    stream_->Finish();
  }

  // Reads until `n` assignments arrived (false if the stream ends first).
  bool ReadAssignments(size_t n) {
    pb::CoordinatorMessage m;
    while (assignments.size() < n && stream_->Read(&m)) Record(m);
    return assignments.size() >= n;
  }
  // Reads until a completion arrived.
  std::optional<pb::CompleteAttempt> NextCompletion() {
    pb::CoordinatorMessage m;
    while (completions.empty() && stream_->Read(&m)) Record(m);
    if (completions.empty()) return std::nullopt;
    pb::CompleteAttempt c = completions.front();
    completions.erase(completions.begin());
    return c;
  }
  void Started(const pb::Assignment& a) {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(a.task_id());
    s->set_attempt(a.attempt());
    stream_->Write(m);
  }
  void Finished(const pb::Assignment& a) {
    pb::WorkerMessage m;
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(a.task_id());
    f->set_attempt(a.attempt());
    f->set_status(pb::TASK_STATUS_SUCCESS);
    f->set_result("{}");
    stream_->Write(m);
  }

  std::optional<pb::Registered> registered;
  std::vector<pb::Assignment> assignments;
  std::vector<pb::CompleteAttempt> completions;

 private:
  void Record(const pb::CoordinatorMessage& m) {
    if (m.has_registered()) registered = m.registered();
    for (const auto& a : m.assignments()) assignments.push_back(a);
    for (const auto& c : m.completions()) completions.push_back(c);
  }
  std::unique_ptr<pb::WorkerService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>> stream_;
  bool closed_ = false;
};

struct Transports {
  explicit Transports(Cluster& c, const std::string& target = "")
      : stub(pb::ClientService::NewStub(
            grpc::CreateChannel(target.empty() ? c.address() : target, grpc::InsecureChannelCredentials()))),
        http("127.0.0.1", c.http_port()) {
    http.set_read_timeout(20, 0);
  }
  grpc::Status Complete(const std::string& token, const std::string& id, pb::TaskStatus status,
                        const std::string& result = "", const std::string& error = "",
                        pb::CompleteTaskResponse* out = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    pb::CompleteTaskRequest req;
    req.set_task_id(id);
    req.set_status(status);
    req.set_result(result);
    req.set_error_message(error);
    pb::CompleteTaskResponse ignored;
    return stub->CompleteTask(&ctx, req, out != nullptr ? out : &ignored);
  }
  httplib::Result Post(const std::string& token, const std::string& id, const std::string& body) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return http.Post(("/tasks/" + id + "/complete").c_str(), h, body, "application/json");
  }
  std::unique_ptr<pb::ClientService::Stub> stub;
  httplib::Client http;
};

std::string Submit(Cluster& c, const std::string& type, const std::string& tag = "") {
  pb::TaskSpec spec;
  spec.set_task_type(type);
  if (!tag.empty()) spec.mutable_requirements()->add_required_tags(tag);
  spec.mutable_requirements()->set_max_retries(0);
  absl::StatusOr<pb::SubmitResponse> r = c.client().Submit(spec);
  REQUIRE(r.ok());
  return r->task_id();
}

void Check(const grpc::Status& s, grpc::StatusCode code, const std::string& message) {
  CHECK(s.error_code() == code);
  CHECK(s.error_message() == message);
}

void CheckHttp(const httplib::Result& r, int status, const std::string& error) {
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(json::parse(r->body).value("error", "") == error);
}

const std::string kOnly =
    "completing a task takes that task's own token (RETIRE_CLUSTER_TOKEN, given to its running attempt)";

}  // namespace

TEST_CASE("complete: only the attempt's own token, only for its task, only while it runs (gRPC and HTTP)") {
  // The stream worker sends no heartbeats, and its disconnect is checked below: neither
  // may end its attempts meanwhile.
  CoordinatorConfig config = WithTokens();
  config.offline_after = absl::Seconds(60);
  config.reconnect_grace = absl::Seconds(60);
  Cluster cluster(config);
  Transports t(cluster);
  client::Client alice(client::ClientOptions{cluster.address(), absl::Seconds(5), nullptr, kAlice});
  auto submit = [&](const std::string& tag = "") {
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    if (!tag.empty()) spec.mutable_requirements()->add_required_tags(tag);
    absl::StatusOr<pb::SubmitResponse> r = alice.Submit(spec);
    REQUIRE(r.ok());
    return r->task_id();
  };
  const std::string a = submit(), b = submit();
  StreamWorker worker(cluster.address(), "stream-1", 2);
  REQUIRE(worker.ReadAssignments(2));
  REQUIRE(worker.registered.has_value());
  CHECK(worker.registered->http_port() == cluster.http_port());  // the bridge's bound port
  CHECK_FALSE(worker.registered->http_tls());
  const pb::Assignment& first = worker.assignments[0].task_id() == a ? worker.assignments[0] : worker.assignments[1];
  const pb::Assignment& second = worker.assignments[0].task_id() == a ? worker.assignments[1] : worker.assignments[0];
  const std::string token_a = first.task_token(), token_b = second.task_token();

  // Assigned but not yet started: the token is valid, the task is not running.
  const std::string not_running = "task " + a + " is assigned, not running: only a running attempt can be completed";
  Check(t.Complete(token_a, a, pb::TASK_STATUS_SUCCESS), grpc::StatusCode::FAILED_PRECONDITION, not_running);
  CheckHttp(t.Post(token_a, a, R"({"status":"success"})"), 409, not_running);
  worker.Started(first);
  worker.Started(second);
  REQUIRE(Eventually([&] { return alice.Get(b).ok() && alice.Get(b)->status() == pb::TASK_STATUS_RUNNING; }));
  REQUIRE(alice.Get(a)->status() == pb::TASK_STATUS_RUNNING);

  // Another task's token: refused naming both tasks.
  const std::string foreign = "a task token may complete only its own task (" + b + "), not " + a;
  Check(t.Complete(token_b, a, pb::TASK_STATUS_SUCCESS), grpc::StatusCode::PERMISSION_DENIED, foreign);
  CheckHttp(t.Post(token_b, a, R"({"status":"success"})"), 403, foreign);
  // Client tokens of every role, the owner's included: refused naming the role.
  for (const auto& [token, name, role] : {std::tuple{kAdmin, "root", "admin"}, std::tuple{kAlice, "alice", "submit"},
                                          std::tuple{kBob, "bob", "submit"}, std::tuple{kReader, "auditor", "read"}}) {
    const std::string why = kOnly + "; a client token ('" + name + "', role " + role + ") may not";
    INFO(name);
    Check(t.Complete(token, a, pb::TASK_STATUS_SUCCESS), grpc::StatusCode::PERMISSION_DENIED, why);
    CheckHttp(t.Post(token, a, R"({"status":"success"})"), 403, why);
  }
  // No token at all (client tokens configured): unauthenticated.
  CHECK(t.Complete("", a, pb::TASK_STATUS_SUCCESS).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(t.Post("", a, R"({"status":"success"})")->status == 401);

  // Bad requests, named; the same words on both transports where the fields agree.
  Check(t.Complete(token_a, a, pb::TASK_STATUS_RUNNING), grpc::StatusCode::INVALID_ARGUMENT,
        "status: expected success or failed, got running");
  CheckHttp(t.Post(token_a, a, R"({"status":"running"})"), 400, "status: expected success or failed, got running");
  CheckHttp(t.Post(token_a, a, R"({"status":"done"})"), 400, "status: expected success or failed, got 'done'");
  CheckHttp(t.Post(token_a, a, R"({"result":{}})"), 400, "status: required, success or failed");
  Check(t.Complete(token_a, a, pb::TASK_STATUS_SUCCESS, "[1,2]"), grpc::StatusCode::INVALID_ARGUMENT,
        "result must be a JSON object");
  CheckHttp(t.Post(token_a, a, R"({"status":"success","result":[1,2]})"), 400, "result must be a JSON object");
  Check(t.Complete(token_a, a, pb::TASK_STATUS_SUCCESS, "{}", "oops"), grpc::StatusCode::INVALID_ARGUMENT,
        "error_message: only with status failed");
  CheckHttp(t.Post(token_a, a, R"({"status":"success","error":"oops"})"), 400, "error: only with status failed");
  CheckHttp(t.Post(token_a, a, R"({"status":"failed","error":7})"), 400, "error: expected a string");
  CheckHttp(t.Post(token_a, a, R"({"status":"success","pid":7})"), 400,
            "pid: unknown field (expected status, result and error)");
  CheckHttp(t.Post(token_a, a, "[]"), 400,
            R"(body: expected an object {"status": "success"|"failed", "result"?, "error"?})");
  CheckHttp(t.Post(token_a, a, "{"), 400, "body: not valid JSON");
  CHECK(worker.completions.empty());

  // Accepted over gRPC: handed to the worker with the token's attempt.
  pb::CompleteTaskResponse accepted;
  REQUIRE(t.Complete(token_a, a, pb::TASK_STATUS_SUCCESS, R"({"title":"Example"})", "", &accepted).ok());
  CHECK(accepted.task_id() == a);
  CHECK(accepted.attempt() == 1);
  std::optional<pb::CompleteAttempt> c = worker.NextCompletion();
  REQUIRE(c.has_value());
  CHECK(c->task_id() == a);
  CHECK(c->attempt() == 1);
  CHECK(c->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(c->result() == R"({"title":"Example"})");
  // Accepted over HTTP: 202.
  httplib::Result r = t.Post(token_b, b, R"({"status":"failed","result":{"step":3},"error":"login refused"})");
  REQUIRE(r);
  CHECK(r->status == 202);
  CHECK(json::parse(r->body) == json{{"task_id", b}, {"attempt", 1}, {"accepted", true}});
  c = worker.NextCompletion();
  REQUIRE(c.has_value());
  CHECK(c->task_id() == b);
  CHECK(c->status() == pb::TASK_STATUS_FAILED);
  CHECK(json::parse(c->result()) == json{{"step", 3}});
  CHECK(c->error_message() == "login refused");

  // Once the attempt has ended its token is void, as every task token.
  worker.Finished(first);
  REQUIRE(Eventually([&] { return alice.Get(a)->status() == pb::TASK_STATUS_SUCCESS; }));
  grpc::Status s = t.Complete(token_a, a, pb::TASK_STATUS_SUCCESS);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(s.error_message(), Catch::StartsWith("task token is not valid"));
  CHECK(t.Post(token_a, a, R"({"status":"success"})")->status == 401);

  // Its worker disconnected (still within the reconnect grace): retry later.
  worker.Close();
  const std::string gone = "the worker running task " + b + " (stream-1) is disconnected; retry the completion";
  REQUIRE(Eventually([&] { return t.Complete(token_b, b, pb::TASK_STATUS_SUCCESS).error_code() == grpc::StatusCode::UNAVAILABLE; }));
  Check(t.Complete(token_b, b, pb::TASK_STATUS_SUCCESS), grpc::StatusCode::UNAVAILABLE, gone);
  CheckHttp(t.Post(token_b, b, R"({"status":"success"})"), 503, gone);
}

namespace {

// A worker assembled as Worker::Start does (signing, task gateway, executor, session),
// with one more handler: await_callback (tests/unit/await_callback_handler.h). It opens
// each attempt's task socket so the test can call through the gateway as the task would.
class CallbackWorker {
 public:
  CallbackWorker(const std::string& address, const std::string& device)
      : dir_((fs::temp_directory_path() / NewId("rc-callback-worker")).string()) {
    fs::create_directories(dir_);
    auto handler = std::make_unique<worker::AwaitCallbackHandler>(dir_);
    await = handler.get();
    worker::AddBuiltinHandlers(&handlers_);
    handlers_.Add("await_callback", std::move(handler));
    WorkerConfig config = Cluster::Worker(device, 2);
    config.join = address;
    config.data_dir = dir_;
    absl::StatusOr<Ed25519Key> key = worker::LoadOrCreateWorkerKey(dir_);
    REQUIRE(key.ok());
    caps_.set_device_id(device);
    caps_.set_slots(2);
    caps_.set_platform("linux");
    caps_.set_cpu_cores(1);
    for (const std::string& t : handlers_.types()) caps_.add_task_types(t);
    caps_.set_public_key(key->public_key());
    signer_ = std::make_unique<worker::ResultSigner>(*key, device);
    outbox_.SignWith(signer_.get());
    auto channel = worker::MakeCoordinatorChannel(config, grpc::InsecureChannelCredentials());
    auto gateway = worker::TaskGateway::Start(channel, dir_, [this](const std::string& id, int attempt, bool waiting) {
      executor_->SetWaiting(id, attempt, waiting);
    });
    REQUIRE(gateway.ok());
    gateway_ = std::move(*gateway);
    executor_ = std::make_unique<worker::Executor>(2, &handlers_, &outbox_, caps_, RealClock::Get(), gateway_.get());
    session_ = std::make_unique<worker::Session>(config, channel, executor_.get(), &outbox_, [this] { return caps_; },
                                                 nullptr);
    session_->Start();
  }
  ~CallbackWorker() {
    session_->Stop();
    executor_->Stop();
    gateway_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool connected() const { return session_->connected(); }
  worker::AwaitCallbackHandler* await = nullptr;

 private:
  const std::string dir_;
  worker::HandlerRegistry handlers_;
  pb::Capabilities caps_;
  worker::Outbox outbox_;
  std::unique_ptr<worker::ResultSigner> signer_;
  std::unique_ptr<worker::TaskGateway> gateway_;
  std::unique_ptr<worker::Executor> executor_;
  std::unique_ptr<worker::Session> session_;
};

}  // namespace

TEST_CASE("complete: a callback ends the attempt of a handler that waits for it, with its result, signed") {
  Cluster cluster;
  CallbackWorker w(cluster.address(), "callback-1");
  REQUIRE(Eventually([&] { return w.connected(); }));
  Transports t(cluster);
  const std::string ok = Submit(cluster, "await_callback"), failed = Submit(cluster, "await_callback");
  REQUIRE(w.await->WaitStarted(2));
  std::map<std::string, worker::AwaitCallbackHandler::Seen> seen;
  for (const auto& s : w.await->seen()) seen[s.task_id] = s;
  REQUIRE(seen.count(ok) == 1);
  REQUIRE(seen.count(failed) == 1);
  // RC_CALLBACK_URL: the host the worker joined, the coordinator's HTTP port.
  CHECK(seen[ok].callback_url == absl::StrCat("http://127.0.0.1:", cluster.http_port(), "/tasks/", ok, "/complete"));
  REQUIRE(Eventually([&] { return cluster.client().Get(ok)->status() == pb::TASK_STATUS_RUNNING; }));
  REQUIRE(Eventually([&] { return cluster.client().Get(failed)->status() == pb::TASK_STATUS_RUNNING; }));

  // Over HTTP, at the URL the attempt was given, with its token.
  httplib::Client http("127.0.0.1", cluster.http_port());
  httplib::Result r = http.Post(("/tasks/" + ok + "/complete").c_str(),
                                httplib::Headers{{"Authorization", "Bearer " + seen[ok].task_token}},
                                R"({"status":"success","result":{"title":"Example Domain"}})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 202);
  absl::StatusOr<pb::Task> done = cluster.client().Wait(ok, absl::Seconds(20));
  REQUIRE(done.ok());
  CHECK(done->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(json::parse(done->result()) == json{{"title", "Example Domain"}});
  // Reported as any end: signed by the worker, and the signature holds.
  std::vector<pb::Worker> workers = cluster.core()->ListWorkers("callback-1");
  REQUIRE(workers.size() == 1);
  absl::StatusOr<client::VerifiedResult> verified = client::VerifyTask(*done, &workers[0], std::nullopt);
  INFO(verified.status().ToString());
  CHECK(verified.ok());

  // Through the task's own socket (the gateway relays CompleteTask as the attempt, whatever
  // token the caller sent), as FAILED.
  REQUIRE_FALSE(seen[failed].socket_path.empty());
  Transports via_socket(cluster, "unix:" + seen[failed].socket_path);
  pb::CompleteTaskResponse accepted;
  grpc::Status s = via_socket.Complete("made-up-by-the-task-0123456789", failed, pb::TASK_STATUS_FAILED,
                                       R"({"step":2})", "the page said no", &accepted);
  REQUIRE(s.ok());
  CHECK(accepted.attempt() == 1);
  done = cluster.client().Wait(failed, absl::Seconds(20));
  REQUIRE(done.ok());
  CHECK(done->status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(done->error_message(), Catch::StartsWith("the page said no (attempt 1 of 1"));
  CHECK(json::parse(done->result()) == json{{"step", 2}});
  CHECK(client::VerifyTask(*done, &workers[0], std::nullopt).ok());
}

TEST_CASE("complete: the CLI completes a task with its token, and refuses what it must") {
  Cluster cluster;
  CallbackWorker w(cluster.address(), "callback-cli");
  REQUIRE(Eventually([&] { return w.connected(); }));
  const std::string id = Submit(cluster, "await_callback"), other = Submit(cluster, "await_callback");
  REQUIRE(w.await->WaitStarted(2));
  REQUIRE(Eventually([&] { return cluster.client().Get(id)->status() == pb::TASK_STATUS_RUNNING; }));
  std::map<std::string, worker::AwaitCallbackHandler::Seen> seen;
  for (const auto& s : w.await->seen()) seen[s.task_id] = s;
  const std::string token = seen[id].task_token;

  Run r = Cli(cluster.address(), {"complete", id, "--error", "x", "--token", token});
  CHECK(r.code == 2);
  CHECK(r.err == "error: --error: only with --failed\n");
  r = Cli(cluster.address(), {"complete", id, "--result", "[1]", "--token", token});
  CHECK(r.code == 2);
  CHECK(r.err == "error: --result must be a JSON object\n");
  r = Cli(cluster.address(), {"complete", other, "--token", token});  // another task's token
  CHECK(r.code == 6);
  CHECK(r.err == "error: a task token may complete only its own task (" + id + "), not " + other + "\n");
  r = Cli(cluster.address(), {"complete", id});  // no token: the loopback admin may not
  CHECK(r.code == 6);
  CHECK(r.err == "error: " + kOnly + "; this call carries no task token\n");

  r = Cli(cluster.address(), {"complete", id, "--failed", "--error", "captcha", "--result", "-", "--json", "--token", token},
          R"({"url":"https://example.com"})");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(json::parse(r.out) == json{{"task_id", id}, {"attempt", 1}, {"accepted", true}});
  absl::StatusOr<pb::Task> done = cluster.client().Wait(id, absl::Seconds(20));
  REQUIRE(done.ok());
  CHECK(done->status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(done->error_message(), Catch::StartsWith("captcha (attempt 1 of 1"));
  CHECK(json::parse(done->result()) == json{{"url", "https://example.com"}});

  r = Cli(cluster.address(), {"complete", other, "--token", seen[other].task_token});
  REQUIRE(r.code == 0);
  CHECK(r.out == "completion of " + other + " (attempt 1, success) handed to its worker\n");
  done = cluster.client().Wait(other, absl::Seconds(20));
  REQUIRE(done.ok());
  CHECK(done->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(done->result() == "{}");
  r = Cli(cluster.address(), {"complete", other, "--token", seen[other].task_token});  // ended: its token is void
  CHECK(r.code == 6);
}

}  // namespace rc::testing
