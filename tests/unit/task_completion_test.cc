// Completing a running attempt from outside (DESIGN.md "Browser automation"), layer by
// layer without RPC: who may (the API's table: only the task's own token), what is valid,
// when the core routes it to the worker (RUNNING, the current attempt, a connected
// worker), and how the worker's Executor hands it to the attempt (its inbox) with the
// attempt's RC_CALLBACK_URL.
#include <catch2/catch.hpp>

#include "coordinator/api/client_api.h"
#include "tests/unit/await_callback_handler.h"
#include "tests/unit/coordinator_fixture.h"
#include "tests/unit/event_recorder.h"
#include "worker/execution/executor.h"
#include "worker/session/session.h"

namespace rc {

namespace pb = ::retire_cluster::v1;

namespace {

// Records every message the core sends a worker (the shared FakeLink keeps only some).
class RecordingLink final : public coordinator::WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    if (m.has_registered()) registered = m.registered();
    for (const auto& a : m.assignments()) assigned.push_back(a);
    for (const auto& c : m.completions()) completions.push_back(c);
  }
  void Close(absl::Status) override {}
  pb::Registered registered;
  std::vector<pb::Assignment> assigned;
  std::vector<pb::CompleteAttempt> completions;
};

struct CoreFixture : coordinator::Fixture {
  std::shared_ptr<RecordingLink> link = std::make_shared<RecordingLink>();
  uint64_t epoch = 0;

  void JoinWorker(int slots = 2) {
    pb::Register reg;
    pb::Capabilities* c = reg.mutable_capabilities();
    c->set_device_id("w1");
    c->set_slots(slots);
    c->set_platform("linux");
    c->set_cpu_cores(2);
    c->add_task_types("echo");
    absl::StatusOr<uint64_t> e = core.RegisterWorker(reg, link);
    REQUIRE(e.ok());
    epoch = *e;
  }
  void Started(const pb::Assignment& a) {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(a.task_id());
    s->set_attempt(a.attempt());
    core.HandleWorkerMessage("w1", epoch, m);
  }
  absl::StatusOr<int32_t> Complete(const std::string& id, int32_t attempt) {
    pb::CompleteAttempt c;
    c.set_task_id(id);
    c.set_attempt(attempt);
    c.set_status(pb::TASK_STATUS_SUCCESS);
    c.set_result(R"({"done":true})");
    return core.CompleteAttempt(c);
  }
};

pb::Assignment Await(const std::string& id, int attempt = 1) {
  pb::Assignment a;
  a.set_task_id(id);
  a.set_attempt(attempt);
  a.set_task_type("await_callback");
  a.set_payload("{}");
  a.set_timeout_seconds(30);
  a.set_task_token("rct1." + id + ".1.secret");
  return a;
}

worker::ExternalCompletion Completion(pb::TaskStatus status, std::string result, std::string error = "") {
  worker::ExternalCompletion c;
  c.status = status;
  c.result = std::move(result);
  c.error_message = std::move(error);
  return c;
}

}  // namespace

TEST_CASE("completion: the callback base is the joined host with the coordinator's HTTP port") {
  using worker::CallbackBaseFor;
  CHECK(CallbackBaseFor("127.0.0.1:8080", 8081, false) == "http://127.0.0.1:8081");
  CHECK(CallbackBaseFor("coordinator.lan:8080", 443, true) == "https://coordinator.lan:443");
  CHECK(CallbackBaseFor("[::1]:8080", 8081, false) == "http://[::1]:8081");
  CHECK(CallbackBaseFor("dns:///coordinator.lan:8080", 9000, false) == "http://coordinator.lan:9000");
  CHECK(CallbackBaseFor("dns://8.8.8.8/coordinator.lan:8080", 9000, false) == "http://coordinator.lan:9000");
  CHECK(CallbackBaseFor("ipv4:10.0.0.1:8080", 9000, false) == "http://10.0.0.1:9000");
  CHECK(CallbackBaseFor("ipv6:[::1]:8080", 9000, false) == "http://[::1]:9000");
  CHECK(CallbackBaseFor("127.0.0.1:8080", 0, false).empty());  // the coordinator serves no HTTP
  CHECK(CallbackBaseFor("8080", 8081, false).empty());         // no host to name
}

TEST_CASE("completion: the Executor gives each running attempt an inbox and its URL, and delivers once") {
  worker::HandlerRegistry handlers;
  auto owned = std::make_unique<worker::AwaitCallbackHandler>();
  worker::AwaitCallbackHandler* await = owned.get();
  handlers.Add("await_callback", std::move(owned));
  worker::Recorder events;
  worker::Executor executor(2, &handlers, &events, pb::Capabilities());

  // Before the session knows the coordinator's HTTP port: no URL, still an inbox.
  executor.Assign(Await("t0"));
  REQUIRE(await->WaitStarted(1));
  CHECK(executor.Complete("t0", 1, Completion(pb::TASK_STATUS_SUCCESS, "{}")));
  REQUIRE(events.WaitFinished(1));

  executor.SetCallbackBase("http://coordinator:8081");
  executor.Assign(Await("t1"));
  executor.Assign(Await("t2"));
  REQUIRE(await->WaitStarted(3));
  std::vector<worker::AwaitCallbackHandler::Seen> seen = await->seen();
  CHECK(seen[0].callback_url.empty());
  CHECK(seen[0].had_inbox);
  for (size_t i = 1; i < 3; ++i) {
    INFO(seen[i].task_id);
    CHECK(seen[i].callback_url == "http://coordinator:8081/tasks/" + seen[i].task_id + "/complete");
    CHECK(seen[i].task_token == "rct1." + seen[i].task_id + ".1.secret");
    CHECK(seen[i].had_inbox);
  }
  // Only a running attempt of this worker takes one; the first completion wins.
  CHECK_FALSE(executor.Complete("t1", 2, Completion(pb::TASK_STATUS_SUCCESS, "{}")));
  CHECK_FALSE(executor.Complete("nope", 1, Completion(pb::TASK_STATUS_SUCCESS, "{}")));
  CHECK(executor.Complete("t1", 1, Completion(pb::TASK_STATUS_SUCCESS, R"({"x":1})")));
  CHECK_FALSE(executor.Complete("t1", 1, Completion(pb::TASK_STATUS_FAILED, "{}", "late")));
  CHECK(executor.Complete("t2", 1, Completion(pb::TASK_STATUS_FAILED, R"({"y":2})", "the page said no")));
  REQUIRE(events.WaitFinished(3));
  CHECK_FALSE(executor.Complete("t1", 1, Completion(pb::TASK_STATUS_SUCCESS, "{}")));  // ended: inbox gone
  absl::MutexLock lock(&events.mu);
  for (const pb::TaskFinished& f : events.finished) {
    INFO(f.task_id());
    if (f.task_id() == "t1") {
      CHECK(f.status() == pb::TASK_STATUS_SUCCESS);
      CHECK(f.result() == R"({"x":1})");
    } else if (f.task_id() == "t2") {
      CHECK(f.status() == pb::TASK_STATUS_FAILED);
      CHECK(f.error_message() == "the page said no");
      CHECK(f.result() == R"({"y":2})");
    }
  }
}

TEST_CASE("completion: the core routes it to the worker only for the current, running attempt") {
  CoreFixture f;
  f.core.SetCallbackEndpoint(8443, true);
  f.JoinWorker();
  CHECK(f.link->registered.http_port() == 8443);
  CHECK(f.link->registered.http_tls());

  const std::string id = f.Submit("echo");
  REQUIRE(f.link->assigned.size() == 1);
  const pb::Assignment a = f.link->assigned[0];
  absl::StatusOr<int32_t> r = f.Complete(id, 1);  // assigned, not yet started
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(r.status().message() == "task " + id + " is assigned, not running: only a running attempt can be completed");

  f.Started(a);
  r = f.Complete(id, 2);
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(r.status().message() == "task " + id + " runs attempt 1, not attempt 2 (the token's): that attempt has ended");
  CHECK(f.link->completions.empty());

  r = f.Complete(id, 1);
  REQUIRE(r.ok());
  CHECK(*r == 1);
  REQUIRE(f.link->completions.size() == 1);
  CHECK(f.link->completions[0].task_id() == id);
  CHECK(f.link->completions[0].attempt() == 1);
  CHECK(f.link->completions[0].status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.link->completions[0].result() == R"({"done":true})");
  CHECK(f.Get(id).status() == pb::TASK_STATUS_RUNNING);  // ends only when the worker says so

  f.Finish("w1", f.epoch, a);
  r = f.Complete(id, 1);
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(r.status().message() == "task " + id + " has ended (success): only a running attempt can be completed");

  const std::string queued = f.Submit("echo", pb::PRIORITY_NORMAL,
                                      [](pb::TaskSpec* s) { s->mutable_requirements()->add_required_tags("gpu-farm"); });
  r = f.Complete(queued, 1);
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(r.status().message() == "task " + queued + " is queued, not running: only a running attempt can be completed");

  // Its worker's stream gone (within the reconnect grace the task still runs there).
  const std::string held = f.Submit("echo");
  REQUIRE(f.link->assigned.size() == 2);
  f.Started(f.link->assigned[1]);
  f.core.WorkerDisconnected("w1", f.epoch);
  REQUIRE(f.Get(held).status() == pb::TASK_STATUS_RUNNING);
  r = f.Complete(held, 1);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(r.status().message() == "the worker running task " + held + " (w1) is disconnected; retry the completion");
  CHECK(f.link->completions.size() == 1);
}

TEST_CASE("completion: the API admits only the task's own token and validates the request") {
  CoreFixture f;
  coordinator::ClientApi api(&f.core, nullptr);
  f.JoinWorker();
  const std::string mine = f.Submit("echo");
  const std::string other = f.Submit("echo");
  REQUIRE(f.link->assigned.size() == 2);
  f.Started(f.link->assigned[0]);
  f.Started(f.link->assigned[1]);
  const Principal task{Role::kSubmit, "alice", TaskCaller{mine, 1, mine, 0}};

  // The table's row: no client role may, whatever it may do elsewhere.
  const std::string only =
      "completing a task takes that task's own token (RETIRE_CLUSTER_TOKEN, given to its running attempt)";
  CHECK(coordinator::AllowOp(task, coordinator::ClientOp::kCompleteTask).ok());
  struct Refused {
    Principal who;
    std::string why;
  };
  for (const Refused& r : {Refused{{Role::kAdmin, "root"}, "; a client token ('root', role admin) may not"},
                           Refused{{Role::kSubmit, "alice"}, "; a client token ('alice', role submit) may not"},
                           Refused{{Role::kRead, "auditor"}, "; a client token ('auditor', role read) may not"},
                           Refused{{Role::kAdmin, ""}, "; this call carries no task token"}}) {
    absl::Status s = coordinator::AllowOp(r.who, coordinator::ClientOp::kCompleteTask);
    CHECK(s.code() == absl::StatusCode::kPermissionDenied);
    CHECK(s.message() == only + r.why);
  }
  // Without client tokens the loopback caller is admin: still refused.
  absl::StatusOr<Principal> local =
      api.Admit(coordinator::ClientOp::kCompleteTask, "", [] { return coordinator::Peer{"ipv4:127.0.0.1:1", false}; });
  CHECK(local.status().code() == absl::StatusCode::kPermissionDenied);

  auto complete = [&](const Principal& who, const std::string& id, pb::TaskStatus status, const std::string& result,
                      const std::string& error = "") {
    pb::CompleteTaskRequest req;
    req.set_task_id(id);
    req.set_status(status);
    req.set_result(result);
    req.set_error_message(error);
    return api.CompleteTask(who, req);
  };
  auto refused = [](const absl::StatusOr<pb::CompleteTaskResponse>& r, absl::StatusCode code, const std::string& msg) {
    CHECK(r.status().code() == code);
    CHECK(r.status().message() == msg);
  };
  refused(complete(task, other, pb::TASK_STATUS_SUCCESS, ""), absl::StatusCode::kPermissionDenied,
          "a task token may complete only its own task (" + mine + "), not " + other);
  refused(complete(Principal{Role::kAdmin, "root"}, mine, pb::TASK_STATUS_SUCCESS, ""),
          absl::StatusCode::kPermissionDenied, only + "; a client token ('root', role admin) may not");
  refused(complete(task, "", pb::TASK_STATUS_SUCCESS, ""), absl::StatusCode::kInvalidArgument, "task_id: required");
  refused(complete(task, "a/b", pb::TASK_STATUS_SUCCESS, ""), absl::StatusCode::kInvalidArgument,
          "task_id: 'a/b' is not a task id");
  refused(complete(task, mine, pb::TASK_STATUS_UNSPECIFIED, ""), absl::StatusCode::kInvalidArgument,
          "status: required, success or failed");
  refused(complete(task, mine, pb::TASK_STATUS_RUNNING, ""), absl::StatusCode::kInvalidArgument,
          "status: expected success or failed, got running");
  refused(complete(task, mine, static_cast<pb::TaskStatus>(99), ""), absl::StatusCode::kInvalidArgument,
          "status: expected success or failed, got 99");
  refused(complete(task, mine, pb::TASK_STATUS_SUCCESS, "[1]"), absl::StatusCode::kInvalidArgument,
          "result must be a JSON object");
  CHECK_THAT(std::string(complete(task, mine, pb::TASK_STATUS_SUCCESS, "{\"a\":").status().message()),
             Catch::StartsWith("result is not valid JSON: "));
  refused(complete(task, mine, pb::TASK_STATUS_SUCCESS, std::string(coordinator::ClientApi::kMaxCompletionResultBytes + 1, ' ')),
          absl::StatusCode::kInvalidArgument, "result: at most 1048576 bytes, got 1048577");
  refused(complete(task, mine, pb::TASK_STATUS_SUCCESS, "{}", "why"), absl::StatusCode::kInvalidArgument,
          "error_message: only with status failed");
  CHECK(f.link->completions.empty());  // nothing refused reached the worker

  // Accepted: the token's attempt; "" is {}, and a failure without words gets some.
  absl::StatusOr<pb::CompleteTaskResponse> ok = complete(task, mine, pb::TASK_STATUS_FAILED, "");
  REQUIRE(ok.ok());
  CHECK(ok->task_id() == mine);
  CHECK(ok->attempt() == 1);
  REQUIRE(f.link->completions.size() == 1);
  CHECK(f.link->completions[0].result() == "{}");
  CHECK(f.link->completions[0].status() == pb::TASK_STATUS_FAILED);
  CHECK(f.link->completions[0].error_message() == "failed by its callback (no error given)");
}

}  // namespace rc
