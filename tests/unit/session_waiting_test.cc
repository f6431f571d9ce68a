// The session's part in lent slots: it takes max_task_depth from Registered (so a
// waiting attempt lets a queued one start), and tells the coordinator every change of
// the waiting set (WorkerMessage.waiting), against a fake coordinator on 127.0.0.1:0.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_builder.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"
#include "worker/execution/executor.h"
#include "worker/session/outbox.h"
#include "worker/session/session.h"

namespace rc::worker {
namespace {

// Registers the worker with max_task_depth 2 and assigns two "sleep" tasks; records
// every waiting set it hears, as "id/attempt,..." ("" for the empty set).
class FakeCoordinator final : public pb::WorkerService::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<pb::CoordinatorMessage, pb::WorkerMessage>* stream) override {
    pb::WorkerMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "register");
    pb::CoordinatorMessage reply;
    reply.mutable_registered()->set_heartbeat_interval_ms(30000);
    reply.mutable_registered()->set_max_task_depth(2);
    for (const char* id : {"parent", "child"}) {
      pb::Assignment* a = reply.add_assignments();
      a->set_task_id(id);
      a->set_attempt(1);
      a->set_task_type("sleep");
      a->set_payload(R"({"duration": 30})");
      a->set_timeout_seconds(60);
    }
    if (!stream->Write(reply)) return grpc::Status::OK;
    while (stream->Read(&in)) {
      if (!in.has_waiting()) continue;
      std::string set;
      for (const auto& w : in.waiting().attempts()) absl::StrAppend(&set, set.empty() ? "" : ",", w.task_id(), "/", w.attempt());
      absl::MutexLock lock(&mu);
      sets.push_back(set);
    }
    return grpc::Status::OK;
  }
  bool WaitSets(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return sets.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  absl::Mutex mu;
  std::vector<std::string> sets ABSL_GUARDED_BY(mu);
};

}  // namespace

TEST_CASE("session: max_task_depth from Registered lends a waiting slot and the waiting set reaches the coordinator") {
  FakeCoordinator coordinator;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&coordinator);
  auto server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  HandlerRegistry handlers;
  AddBuiltinHandlers(&handlers);
  Outbox outbox;
  Executor executor(1, &handlers, &outbox, pb::Capabilities());
  WorkerConfig config;
  config.join = absl::StrCat("127.0.0.1:", port);
  config.device_id = "waiting-worker";
  auto probe = [] {
    pb::Capabilities c;
    c.set_device_id("waiting-worker");
    c.set_slots(1);
    return c;
  };
  Session session(config, grpc::InsecureChannelCredentials(), &executor, &outbox, probe, nullptr);
  session.Start();
  for (int i = 0; i < 1000 && executor.HeldAttempts().size() < 2; ++i) absl::SleepFor(absl::Milliseconds(5));
  REQUIRE(executor.HeldAttempts().size() == 2);
  CHECK(executor.running() == 1);  // one slot: the child queues behind the parent
  executor.SetWaiting("parent", 1, true);
  CHECK(executor.running() == 2);  // lent: max_task_depth came with Registered
  REQUIRE(coordinator.WaitSets(1));
  executor.SetWaiting("parent", 1, false);
  REQUIRE(coordinator.WaitSets(2));
  {
    absl::MutexLock lock(&coordinator.mu);
    CHECK(coordinator.sets == std::vector<std::string>{"parent/1", ""});
  }
  session.Stop();
  executor.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace rc::worker
