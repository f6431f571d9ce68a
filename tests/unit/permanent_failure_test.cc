// Permanent failures: a handler that refuses its payload before running (INVALID_ARGUMENT)
// makes the executor mark the outcome permanent, and the coordinator then ends the task
// FAILED at once, without the retries a failure that ran gets.
#include <catch2/catch.hpp>

#include "tests/unit/coordinator_fixture.h"
#include "worker/execution/executor.h"

namespace rc {
namespace {

namespace pb = ::retire_cluster::v1;

class Recorder final : public worker::EventSink {
 public:
  void Started(pb::TaskStarted) override {}
  void Progress(pb::TaskProgress) override {}
  void Finished(pb::TaskFinished e) override {
    absl::MutexLock lock(&mu);
    finished[e.task_id()] = e;
  }
  bool WaitFinished(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return finished.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
  }
  absl::Mutex mu;
  std::map<std::string, pb::TaskFinished> finished ABSL_GUARDED_BY(mu);
};

// Fails after "running" with an INVALID_ARGUMENT failure: the task ran, so it is not permanent.
class RanAndFailed final : public worker::Handler {
 public:
  absl::StatusOr<worker::HandlerOutput> Run(const worker::TaskContext&) override {
    worker::HandlerOutput out;
    out.exit_code = 1;
    out.failure = absl::InvalidArgumentError("the program said its input was bad");
    return out;
  }
};

// Refuses with a code that depends on the worker (as node_task does for a missing node).
class WorkerLacks final : public worker::Handler {
 public:
  absl::StatusOr<worker::HandlerOutput> Run(const worker::TaskContext&) override {
    return absl::FailedPreconditionError("node is not installed on this worker");
  }
};

pb::Assignment Assignment(const std::string& id, const std::string& type, const std::string& payload) {
  pb::Assignment a;
  a.set_task_id(id);
  a.set_attempt(1);
  a.set_task_type(type);
  a.set_payload(payload);
  a.set_timeout_seconds(30);
  return a;
}

}  // namespace

TEST_CASE("The executor marks a payload the handler refuses as a permanent failure, and nothing else") {
  worker::HandlerRegistry handlers;
  worker::AddBuiltinHandlers(&handlers);
  handlers.Add("ran_and_failed", std::make_unique<RanAndFailed>());
  handlers.Add("worker_lacks", std::make_unique<WorkerLacks>());
  Recorder events;
  worker::Executor executor(2, &handlers, &events, pb::Capabilities());
  executor.Assign(Assignment("refused", "sleep", R"({"duration":"long"})"));
  executor.Assign(Assignment("ran", "ran_and_failed", "{}"));
  executor.Assign(Assignment("lacks", "worker_lacks", "{}"));
  executor.Assign(Assignment("unknown", "no_such_type", "{}"));
  executor.Assign(Assignment("ok", "echo", "{}"));
  REQUIRE(events.WaitFinished(5));
  absl::MutexLock lock(&events.mu);
  const pb::TaskFinished& refused = events.finished["refused"];
  CHECK(refused.status() == pb::TASK_STATUS_FAILED);
  CHECK(refused.error_message() == "payload.duration: required, a number of seconds");
  CHECK(refused.permanent());
  CHECK(events.finished["ran"].status() == pb::TASK_STATUS_FAILED);
  CHECK_FALSE(events.finished["ran"].permanent());
  CHECK(events.finished["lacks"].status() == pb::TASK_STATUS_FAILED);
  CHECK_FALSE(events.finished["lacks"].permanent());
  CHECK(events.finished["unknown"].status() == pb::TASK_STATUS_FAILED);
  CHECK_FALSE(events.finished["unknown"].permanent());  // another worker may run that type
  CHECK(events.finished["ok"].status() == pb::TASK_STATUS_SUCCESS);
  CHECK_FALSE(events.finished["ok"].permanent());
}

namespace coordinator {

TEST_CASE("The coordinator ends a permanent failure at once, an ordinary failure is retried") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::string permanent = f.Submit("sleep");
  REQUIRE(link->assigned.size() == 1);
  {
    pb::WorkerMessage m;
    pb::TaskFinished* fin = m.add_finished();
    fin->set_task_id(permanent);
    fin->set_attempt(1);
    fin->set_status(pb::TASK_STATUS_FAILED);
    fin->set_error_message("payload.duration: required, a number of seconds");
    fin->set_permanent(true);
    f.core.HandleWorkerMessage("w1", epoch, m);
  }
  pb::Task t = f.Get(permanent);
  CHECK(t.status() == pb::TASK_STATUS_FAILED);
  CHECK(t.attempts() == 1);
  CHECK(t.error_message() == "payload.duration: required, a number of seconds");  // the handler's, no note
  REQUIRE(t.attempt_history_size() == 1);
  CHECK(t.attempt_history(0).status() == pb::TASK_STATUS_FAILED);
  f.PassBackoff(absl::Seconds(2));   // 4x the first retry's backoff; within the heartbeat deadline
  CHECK(link->assigned.size() == 1);  // never assigned again
  CHECK(f.Get(permanent).attempts() == 1);

  // The same failure without the mark: queued for attempt 2 after the backoff.
  std::string ordinary = f.Submit("sleep");
  REQUIRE(link->assigned.size() == 2);
  f.Finish("w1", epoch, link->assigned[1], pb::TASK_STATUS_FAILED);
  CHECK(f.Get(ordinary).status() == pb::TASK_STATUS_QUEUED);
  f.PassBackoff();
  REQUIRE(link->assigned.size() == 3);
  CHECK(link->assigned[2].attempt() == 2);
}

}  // namespace coordinator
}  // namespace rc
