// The worker's task gateway (worker/gateway/): a task's calls through its socket reach a
// (fake) coordinator on 127.0.0.1 as the attempt's task token, streams work, other
// services are refused, the socket ends with the attempt, and task processes (also under
// bwrap, with no network) get the three variables and reach the socket.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/ids.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"
#include "worker/gateway/task_gateway.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/containment.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

// Stands for the coordinator: records the authorization of every call; WatchTask sends
// the task, then waits for Release() (or the call's cancel) before sending it finished.
class FakeCoordinator final : public pb::ClientService::Service {
 public:
  FakeCoordinator() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakeCoordinator() override {
    Release();
    server_->Shutdown();
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  grpc::Status GetTask(grpc::ServerContext* ctx, const pb::GetTaskRequest* req, pb::Task* out) override {
    Record(ctx);
    out->set_task_id(req->task_id());
    out->set_status(pb::TASK_STATUS_RUNNING);
    return grpc::Status::OK;
  }
  grpc::Status WatchTask(grpc::ServerContext* ctx, const pb::GetTaskRequest* req,
                         grpc::ServerWriter<pb::Task>* writer) override {
    Record(ctx);
    pb::Task t;
    t.set_task_id(req->task_id());
    t.set_status(pb::TASK_STATUS_RUNNING);
    writer->Write(t);
    absl::MutexLock lock(&mu_);
    auto go = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return released_ || ctx->IsCancelled(); };
    for (int i = 0; i < 2000 && !go(); ++i) mu_.AwaitWithTimeout(absl::Condition(&released_), absl::Milliseconds(5));
    if (ctx->IsCancelled()) {
      ++cancelled_watches_;
      return grpc::Status::CANCELLED;
    }
    t.set_status(pb::TASK_STATUS_SUCCESS);
    writer->Write(t);
    return grpc::Status::OK;
  }

  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<std::string> authorizations() {
    absl::MutexLock lock(&mu_);
    return authorizations_;
  }
  int cancelled_watches() {
    absl::MutexLock lock(&mu_);
    return cancelled_watches_;
  }

 private:
  void Record(grpc::ServerContext* ctx) {
    absl::MutexLock lock(&mu_);
    auto range = ctx->client_metadata().equal_range("authorization");
    std::string all;
    for (auto it = range.first; it != range.second; ++it) {
      absl::StrAppend(&all, all.empty() ? "" : "|", std::string(it->second.data(), it->second.size()));
    }
    authorizations_.push_back(all);
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  int cancelled_watches_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
};

// What the gateway told the executor about waiting.
struct WaitingLog {
  absl::Mutex mu;
  std::vector<std::string> events ABSL_GUARDED_BY(mu);  // "task-1/1 waiting", "task-1/1 not waiting"
  AttemptLink::WaitingListener Listener() {
    return [this](const std::string& id, int attempt, bool waiting) {
      absl::MutexLock lock(&mu);
      events.push_back(absl::StrCat(id, "/", attempt, waiting ? " waiting" : " not waiting"));
    };
  }
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return events.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  std::vector<std::string> Get() {
    absl::MutexLock lock(&mu);
    return events;
  }
};

struct GatewayFixture {
  FakeCoordinator coordinator;
  WaitingLog waits;
  std::string data_dir;
  std::unique_ptr<TaskGateway> gateway;
  pb::Assignment assignment;

  explicit GatewayFixture(const std::string& dir_name = NewId("rc-gw")) {
    data_dir = (fs::temp_directory_path() / dir_name).string();
    fs::create_directories(data_dir);
    auto g = TaskGateway::Start(grpc::CreateChannel(coordinator.address(), grpc::InsecureChannelCredentials()),
                                data_dir, waits.Listener());
    REQUIRE(g.ok());
    gateway = std::move(*g);
    assignment.set_task_id("task-1");
    assignment.set_attempt(1);
    assignment.set_task_token("rct1.task-1.1.0123456789abcdef");
  }
  ~GatewayFixture() {
    gateway.reset();
    std::error_code ec;
    fs::remove_all(data_dir, ec);
  }
  std::string TaskDir(const std::string& name = "t") {
    std::string d = (fs::path(data_dir) / "tasks" / name).string();
    fs::create_directories(d);
    return d;
  }
};

std::unique_ptr<pb::ClientService::Stub> StubFor(const TaskSocket& s) {
  return pb::ClientService::NewStub(grpc::CreateChannel("unix:" + s.path(), grpc::InsecureChannelCredentials()));
}

void Deadline(grpc::ClientContext* c, int seconds = 10) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

}  // namespace

TEST_CASE("gateway: a call through the task's socket reaches the coordinator with the task token only") {
  GatewayFixture f;
  auto socket = f.gateway->Open(f.assignment, f.TaskDir());
  REQUIRE(socket.ok());
  REQUIRE(*socket != nullptr);
  CHECK((*socket)->path() == fs::weakly_canonical(f.TaskDir()).string() + "/rc.sock");
  CHECK_FALSE((*socket)->outside_task_dir());
  CHECK((*socket)->environment() ==
        std::vector<std::string>{"RETIRE_CLUSTER_COORDINATOR=unix:" + (*socket)->path(),
                                 "RETIRE_CLUSTER_TOKEN=rct1.task-1.1.0123456789abcdef", "RETIRE_CLUSTER_TASK_ID=task-1"});
  struct stat st {};
  REQUIRE(stat((*socket)->path().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  auto stub = StubFor(**socket);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  ctx.AddMetadata("authorization", "Bearer something-the-task-made-up");
  pb::GetTaskRequest req;
  req.set_task_id("task-child");
  pb::Task out;
  grpc::Status s = stub->GetTask(&ctx, req, &out);
  REQUIRE(s.ok());
  CHECK(out.task_id() == "task-child");
  CHECK(f.coordinator.authorizations() == std::vector<std::string>{"Bearer rct1.task-1.1.0123456789abcdef"});
  CHECK(f.waits.Get().empty());  // GetTask does not wait
}

TEST_CASE("gateway: a streaming call works and marks the attempt waiting while in flight") {
  GatewayFixture f;
  auto socket = f.gateway->Open(f.assignment, f.TaskDir());
  REQUIRE(socket.ok());
  auto stub = StubFor(**socket);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  pb::GetTaskRequest req;
  req.set_task_id("task-child");
  auto reader = stub->WatchTask(&ctx, req);
  pb::Task t;
  REQUIRE(reader->Read(&t));
  CHECK(t.status() == pb::TASK_STATUS_RUNNING);
  REQUIRE(f.waits.WaitFor(1));
  CHECK(f.waits.Get() == std::vector<std::string>{"task-1/1 waiting"});
  f.coordinator.Release();
  REQUIRE(reader->Read(&t));
  CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK_FALSE(reader->Read(&t));
  CHECK(reader->Finish().ok());
  REQUIRE(f.waits.WaitFor(2));
  CHECK(f.waits.Get() == std::vector<std::string>{"task-1/1 waiting", "task-1/1 not waiting"});
}

TEST_CASE("gateway: a method of another service is refused UNIMPLEMENTED and never forwarded") {
  GatewayFixture f;
  auto socket = f.gateway->Open(f.assignment, f.TaskDir());
  REQUIRE(socket.ok());
  auto stub = pb::WorkerService::NewStub(grpc::CreateChannel("unix:" + (*socket)->path(),
                                                             grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  auto stream = stub->Connect(&ctx);
  pb::CoordinatorMessage in;
  CHECK_FALSE(stream->Read(&in));
  grpc::Status s = stream->Finish();
  CHECK(s.error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(s.error_message() ==
        "a task's socket serves only retire_cluster.v1.ClientService, not /retire_cluster.v1.WorkerService/Connect");
  CHECK(f.coordinator.authorizations().empty());
}

TEST_CASE("gateway: when the attempt ends its socket goes away and calls in flight are cancelled") {
  GatewayFixture f;
  auto socket = f.gateway->Open(f.assignment, f.TaskDir());
  REQUIRE(socket.ok());
  const std::string path = (*socket)->path();
  auto channel = grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials());
  auto stub = pb::ClientService::NewStub(channel);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  pb::GetTaskRequest req;
  req.set_task_id("task-child");
  auto reader = stub->WatchTask(&ctx, req);
  pb::Task t;
  REQUIRE(reader->Read(&t));
  CHECK(f.gateway->open_sockets() == 1);
  socket->reset();  // the attempt's process ended
  CHECK_FALSE(fs::exists(path));
  CHECK(f.gateway->open_sockets() == 0);
  CHECK_FALSE(reader->Read(&t));
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  REQUIRE(f.waits.WaitFor(2));
  CHECK(f.waits.Get().back() == "task-1/1 not waiting");
  // The coordinator's side was cancelled too, not left waiting.
  bool seen = false;
  for (int i = 0; i < 1000 && !seen; ++i) {
    seen = f.coordinator.cancelled_watches() == 1;
    if (!seen) absl::SleepFor(absl::Milliseconds(5));
  }
  CHECK(seen);
  // A later call on the connection still open is refused.
  grpc::ClientContext again;
  Deadline(&again);
  pb::Task out;
  grpc::Status s = stub->GetTask(&again, req, &out);
  CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("gateway: no task token, no socket (the calls would go as the worker)") {
  GatewayFixture f;
  f.assignment.clear_task_token();
  auto socket = f.gateway->Open(f.assignment, f.TaskDir());
  REQUIRE(socket.ok());
  CHECK(*socket == nullptr);
}

TEST_CASE("gateway: a task dir too long for a socket path gets one under the data dir's s/") {
  GatewayFixture f;
  const std::string dir = f.TaskDir(std::string(100, 'x'));
  REQUIRE(TaskGateway::SocketPathIn(dir).empty());
  auto socket = f.gateway->Open(f.assignment, dir);
  REQUIRE(socket.ok());
  CHECK((*socket)->outside_task_dir());
  CHECK(absl::StartsWith((*socket)->path(), fs::weakly_canonical(f.data_dir).string() + "/s/s-"));
  CHECK((*socket)->path().size() < 108);
  auto stub = StubFor(**socket);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  pb::GetTaskRequest req;
  req.set_task_id("x");
  pb::Task out;
  CHECK(stub->GetTask(&ctx, req, &out).ok());
}

TEST_CASE("gateway: a data dir too long even for the short sockets is refused at start, naming it") {
  const std::string long_dir = "/tmp/" + std::string(100, 'd');
  auto g = TaskGateway::Start(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), long_dir,
                              nullptr);
  REQUIRE_FALSE(g.ok());
  CHECK(g.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(g.status().message(), "data_dir " + long_dir + " is too long for the tasks' Unix sockets"));
}

namespace {

// A `command` task of a worker with `tier` containment, its socket from the fixture's gateway.
absl::StatusOr<HandlerOutput> RunCommand(GatewayFixture& f, const std::string& tier, const nlohmann::json& payload) {
  WorkerConfig config;
  config.data_dir = f.data_dir;
  config.containment = tier;
  auto containment = Containment::Create(config);
  if (!containment.ok()) return containment.status();
  auto handler = MakeCommandHandler(ExecutionOptions::FromConfig(config, *containment));
  StopToken stop(absl::Now() + absl::Seconds(30));
  TaskContext ctx{f.assignment.task_id(), f.assignment.attempt(), payload.dump(), &stop, {}, nullptr, false,
                  [&](const std::string& dir) { return f.gateway->Open(f.assignment, dir); }};
  return handler->Run(ctx);
}

}  // namespace

TEST_CASE("gateway: a command task gets the three variables, and may not set them itself") {
  GatewayFixture f;
  auto out = RunCommand(f, "process",
                        {{"command", "echo \"$RETIRE_CLUSTER_COORDINATOR|$RETIRE_CLUSTER_TOKEN|$RETIRE_CLUSTER_TASK_ID\""}});
  REQUIRE(out.ok());
  REQUIRE(out->failure.ok());
  CHECK(absl::StartsWith(out->stdout, "unix:" + fs::weakly_canonical(f.data_dir).string() + "/tasks/task-1-1-"));
  CHECK(absl::StrContains(out->stdout, "/rc.sock|rct1.task-1.1.0123456789abcdef|task-1\n"));
  CHECK(f.gateway->open_sockets() == 0);  // gone with the process

  auto refused = RunCommand(f, "process", {{"command", "true"}, {"env", {{"RETIRE_CLUSTER_TOKEN", "mine"}}}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StartsWith(refused.status().message(), "payload.env.RETIRE_CLUSTER_TOKEN: refused, reserved"));
}

TEST_CASE("gateway: a task process calls the cluster through its socket, also under bwrap with no network") {
  for (bool long_dir : {false, true}) {
    // A long data dir pushes the task dir's socket path past 107 bytes: the short one is bound.
    GatewayFixture f(long_dir ? NewId("rc-gw-long-data-dir-for-a-socket-path-over-the-limit") : NewId("rc-gw"));
    for (const char* tier : {"process", "bwrap"}) {
      INFO(tier << (long_dir ? ", socket outside the task dir" : ", socket in the task dir"));
      auto out = RunCommand(f, tier, {{"argv", {RC_CLUSTER_PROBE}}});
      if (!out.ok() && std::string(tier) == "bwrap" &&
          absl::StrContains(out.status().message(), "containment bwrap is unavailable")) {
        WARN("SKIPPED: bwrap containment is unavailable here: " << out.status().message());
        continue;
      }
      REQUIRE(out.ok());
      INFO(out->stdout << out->stderr);
      CHECK(out->failure.ok());
      CHECK(out->stdout == "task_id=task-1\n");
    }
    // Every call arrived with the task token, none with the task's own header doubled.
    for (const std::string& a : f.coordinator.authorizations()) CHECK(a == "Bearer rct1.task-1.1.0123456789abcdef");
  }
}

}  // namespace rc::worker
