// The worker's session on a fake clock, against a fake coordinator (an in-process
// WorkerService on 127.0.0.1:0): a heartbeat each interval as the clock advances, and a
// reconnect backoff that grows as specified. Real waits are bounded and only wait for the
// other threads to get somewhere, or check that something did not happen yet.
#include <catch2/catch.hpp>

#include <memory>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"
#include "worker/execution/executor.h"
#include "worker/session/outbox.h"
#include "worker/session/session.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kNotYet = absl::Milliseconds(150);

// Registers every worker with `heartbeat_ms`, or (refusing) ends every stream with
// UNAVAILABLE before registering it. Counts connections and heartbeats.
class FakeCoordinator final : public pb::WorkerService::Service {
 public:
  FakeCoordinator(bool refuse, int64_t heartbeat_ms) : refuse_(refuse), heartbeat_ms_(heartbeat_ms) {}

  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<pb::CoordinatorMessage, pb::WorkerMessage>* stream) override {
    {
      absl::MutexLock lock(&mu_);
      ++connects_;
    }
    if (refuse_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not now");
    pb::WorkerMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "register first");
    pb::CoordinatorMessage reply;
    reply.mutable_registered()->set_heartbeat_interval_ms(heartbeat_ms_);
    if (!stream->Write(reply)) return grpc::Status::OK;
    while (stream->Read(&in)) {
      if (in.has_heartbeat()) {
        absl::MutexLock lock(&mu_);
        ++heartbeats_;
      }
    }
    return grpc::Status::OK;
  }

  // Bounded (real time) waits; true once the count reaches n.
  bool WaitConnects(int n, absl::Duration limit = absl::Seconds(10)) { return WaitFor(&connects_, n, limit); }
  bool WaitHeartbeats(int n, absl::Duration limit = absl::Seconds(10)) { return WaitFor(&heartbeats_, n, limit); }
  int connects() {
    absl::MutexLock lock(&mu_);
    return connects_;
  }
  int heartbeats() {
    absl::MutexLock lock(&mu_);
    return heartbeats_;
  }

 private:
  bool WaitFor(const int* count, int n, absl::Duration limit) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return *count >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), limit);
  }

  const bool refuse_;
  const int64_t heartbeat_ms_;
  absl::Mutex mu_;
  int connects_ ABSL_GUARDED_BY(mu_) = 0;
  int heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
};

// A fake coordinator on 127.0.0.1:0 and a worker session joined to it, both on
// `clock`, the session's reconnect backoff from 10 s up to 20 s (fake time).
struct Cluster {
  FakeClock clock;
  FakeCoordinator coordinator;
  std::unique_ptr<grpc::Server> server;
  HandlerRegistry handlers;
  Outbox outbox{&clock};
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Session> session;

  explicit Cluster(bool refuse, int64_t heartbeat_ms = 30000) : coordinator(refuse, heartbeat_ms) {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&coordinator);
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
    REQUIRE(port > 0);
    AddBuiltinHandlers(&handlers);
    executor = std::make_unique<Executor>(1, &handlers, &outbox, pb::Capabilities(), &clock);
    WorkerConfig config;
    config.join = absl::StrCat("127.0.0.1:", port);
    config.device_id = "fake-clock-worker";
    config.reconnect_initial = absl::Seconds(10);
    config.reconnect_max = absl::Seconds(20);
    auto probe = [] {
      pb::Capabilities c;
      c.set_device_id("fake-clock-worker");
      c.set_slots(1);
      return c;
    };
    session = std::make_unique<Session>(config, grpc::InsecureChannelCredentials(), executor.get(), &outbox, probe,
                                        nullptr, &clock);
    session->Start();
  }
  ~Cluster() {
    session->Stop();
    executor->Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
};

}  // namespace

TEST_CASE("A session sends one heartbeat each interval as the fake clock advances") {
  Cluster c(/*refuse=*/false, /*heartbeat_ms=*/30000);
  for (int i = 0; i < 2000 && !c.session->connected(); ++i) absl::SleepFor(absl::Milliseconds(1));
  REQUIRE(c.session->connected());
  REQUIRE(c.clock.WaitForWaiters(1));  // the writer waits for the next heartbeat
  c.clock.Advance(absl::Seconds(29));
  absl::SleepFor(kNotYet);
  CHECK(c.coordinator.heartbeats() == 0);
  REQUIRE(c.clock.WaitForWaiters(1));
  c.clock.Advance(absl::Seconds(1));
  REQUIRE(c.coordinator.WaitHeartbeats(1));
  for (int n = 2; n <= 4; ++n) {
    REQUIRE(c.clock.WaitForWaiters(1));  // waiting for the next one, due an interval later
    c.clock.Advance(absl::Seconds(30));
    REQUIRE(c.coordinator.WaitHeartbeats(n));
  }
  absl::SleepFor(kNotYet);
  CHECK(c.coordinator.heartbeats() == 4);  // one per interval, no more
  CHECK(c.coordinator.connects() == 1);
}

TEST_CASE("A refused session reconnects after a backoff that doubles up to its maximum") {
  Cluster c(/*refuse=*/true);
  REQUIRE(c.coordinator.WaitConnects(1));
  // Each wait is the step scaled by a jitter in [0.5, 1]; steps 10 s, 20 s, then 20 s
  // (the maximum; doubling on would make it at least 40 s).
  struct Step {
    absl::Duration never_before, always_by;
  };
  const Step steps[] = {{absl::Seconds(5), absl::Seconds(10)},
                        {absl::Seconds(10), absl::Seconds(20)},
                        {absl::Seconds(10), absl::Seconds(20)},
                        {absl::Seconds(10), absl::Seconds(20)}};
  int connects = 1;
  for (const Step& s : steps) {
    REQUIRE(c.clock.WaitForWaiters(1));  // the session waits out its backoff
    c.clock.Advance(s.never_before - absl::Milliseconds(100));
    absl::SleepFor(kNotYet);
    CHECK(c.coordinator.connects() == connects);
    c.clock.Advance(s.always_by - s.never_before + absl::Milliseconds(100));
    ++connects;
    REQUIRE(c.coordinator.WaitConnects(connects));
  }
}

}  // namespace rc::worker
