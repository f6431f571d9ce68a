// Each decorator of the worker's attempt chain (worker/execution/attempt_decorators.h),
// around a fake leaf: what it decides, and that it leaves the rest alone.
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "common/clock.h"
#include "worker/execution/attempt_decorators.h"

namespace rc::worker {
namespace {

class Events final : public EventSink {
 public:
  void Started(pb::TaskStarted e) override { started.push_back(e); }
  void Finished(pb::TaskFinished e) override { finished.push_back(e); }
  void Progress(pb::TaskProgress e) override { progress.push_back(e); }
  std::vector<pb::TaskStarted> started;
  std::vector<pb::TaskFinished> finished;
  std::vector<pb::TaskProgress> progress;
};

// The leaf: returns what `run` says and counts its calls.
class FakeLeaf final : public AttemptExecutor {
 public:
  explicit FakeLeaf(std::function<AttemptResult(const Attempt&)> run, int* calls) : run_(std::move(run)), calls_(calls) {}
  AttemptResult Execute(const Attempt& attempt) override {
    ++*calls_;
    return run_(attempt);
  }

 private:
  std::function<AttemptResult(const Attempt&)> run_;
  int* calls_;
};

AttemptResult HandlerReturned(absl::StatusOr<HandlerOutput> output) {
  AttemptResult r;
  r.output = std::move(output);
  r.handler_ran = true;
  return r;
}

struct Setup {
  FakeClock clock;
  Events events;
  pb::Assignment assignment;
  StopToken stop{clock.Now() + absl::Seconds(10), &clock};
  int calls = 0;
  Setup() {
    assignment.set_task_id("t1");
    assignment.set_attempt(2);
    assignment.set_timeout_seconds(10);
  }
  Attempt MakeAttempt() { return Attempt{&assignment, &stop, WorkerSnapshot{}, &events, clock.Now()}; }
  std::unique_ptr<AttemptExecutor> Leaf(std::function<AttemptResult(const Attempt&)> run) {
    return std::make_unique<FakeLeaf>(std::move(run), &calls);
  }
};

}  // namespace

TEST_CASE("Outcome rules: only a handler's own INVALID_ARGUMENT makes a failure permanent") {
  Setup s;
  SECTION("the handler refused the payload") {
    OutcomeRules rules(s.Leaf([](const Attempt&) { return HandlerReturned(absl::InvalidArgumentError("payload.x: required")); }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_FAILED);
    CHECK(r.finished.error_message() == "payload.x: required");
    CHECK(r.finished.permanent());
  }
  SECTION("the same code from something that is not the handler") {
    OutcomeRules rules(s.Leaf([](const Attempt&) {
      AttemptResult r;
      r.output = absl::InvalidArgumentError("a guard said no");
      return r;
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_FAILED);
    CHECK_FALSE(r.finished.permanent());
  }
  SECTION("the task ran and failed, whatever the code") {
    OutcomeRules rules(s.Leaf([](const Attempt&) {
      HandlerOutput out;
      out.stdout = "partial";
      out.exit_code = 3;
      out.failure = absl::InvalidArgumentError("exit code 3");
      return HandlerReturned(out);
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_FAILED);
    CHECK(r.finished.error_message() == "exit code 3");
    CHECK(r.finished.stdout() == "partial");
    CHECK(r.finished.exit_code() == 3);
    CHECK_FALSE(r.finished.permanent());
  }
  SECTION("another error is retried") {
    OutcomeRules rules(s.Leaf([](const Attempt&) { return HandlerReturned(absl::UnavailableError("no network")); }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_FAILED);
    CHECK_FALSE(r.finished.permanent());
  }
  CHECK(s.calls == 1);
}

TEST_CASE("Outcome rules: Started first, ids set, success keeps the output and ends the pid") {
  Setup s;
  const absl::Time start = s.clock.Now();
  OutcomeRules rules(s.Leaf([&](const Attempt&) {
    CHECK(s.events.started.size() == 1);  // before the handler runs
    HandlerOutput out;
    out.result = R"({"ok":true})";
    out.usage.set_pid(1234);
    out.usage.set_cpu_seconds(0.5);
    return HandlerReturned(out);
  }));
  AttemptResult r = rules.Execute(s.MakeAttempt());
  REQUIRE(s.events.started.size() == 1);
  CHECK(s.events.started[0].task_id() == "t1");
  CHECK(s.events.started[0].attempt() == 2);
  CHECK(s.events.started[0].started_at_ms() == absl::ToUnixMillis(start));
  CHECK(r.finished.task_id() == "t1");
  CHECK(r.finished.attempt() == 2);
  CHECK(r.finished.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(r.finished.result() == R"({"ok":true})");
  CHECK(r.finished.usage().pid() == 0);
  CHECK(r.finished.usage().cpu_seconds() == 0.5);
}

TEST_CASE("Outcome rules: a cancel before the start runs nothing and reports no start") {
  Setup s;
  s.stop.Cancel();
  OutcomeRules rules(s.Leaf([](const Attempt&) { return HandlerReturned(HandlerOutput()); }));
  AttemptResult r = rules.Execute(s.MakeAttempt());
  CHECK(s.calls == 0);
  CHECK(s.events.started.empty());
  CHECK(r.finished.status() == pb::TASK_STATUS_CANCELLED);
  CHECK(r.finished.error_message() == "cancelled before it started");
}

TEST_CASE("Outcome rules: cancel while running, the handler's own limit, the attempt's deadline") {
  Setup s;
  SECTION("cancelled while running wins over what the handler returned") {
    OutcomeRules rules(s.Leaf([&](const Attempt&) {
      s.stop.Cancel();
      return HandlerReturned(absl::AbortedError("stopped"));
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_CANCELLED);
    CHECK(r.finished.error_message() == "cancelled");
  }
  SECTION("DEADLINE_EXCEEDED from the handler is a TIMEOUT with its message") {
    OutcomeRules rules(s.Leaf([](const Attempt&) {
      HandlerOutput out;
      out.failure = absl::DeadlineExceededError("payload.timeout: killed after 1s");
      return HandlerReturned(out);
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_TIMEOUT);
    CHECK(r.finished.error_message() == "payload.timeout: killed after 1s");
  }
  SECTION("past the attempt's deadline (on the token's clock) is a TIMEOUT") {
    OutcomeRules rules(s.Leaf([&](const Attempt&) {
      s.clock.Advance(absl::Seconds(10));
      return HandlerReturned(absl::AbortedError("stopped"));
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_TIMEOUT);
    CHECK(r.finished.error_message() == "timed out after 10s");
  }
  SECTION("one second before the deadline it is the handler's failure") {
    OutcomeRules rules(s.Leaf([&](const Attempt&) {
      s.clock.Advance(absl::Seconds(9));
      return HandlerReturned(absl::AbortedError("stopped"));
    }));
    AttemptResult r = rules.Execute(s.MakeAttempt());
    CHECK(r.finished.status() == pb::TASK_STATUS_FAILED);
    CHECK(r.finished.error_message() == "stopped");
  }
}

TEST_CASE("Submitter guard: a foreign owner's task is refused without running, another's runs") {
  Setup s;
  pb::Capabilities caps;
  caps.add_accepted_submitters("alice");
  caps.add_accepted_submitters("carol");
  SubmitterGuard guard(&caps, s.Leaf([](const Attempt&) { return HandlerReturned(HandlerOutput()); }));
  s.assignment.set_owner("bob");
  AttemptResult refused = guard.Execute(s.MakeAttempt());
  CHECK(s.calls == 0);
  CHECK_FALSE(refused.handler_ran);
  CHECK(refused.output.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(refused.output.status().message() == "this worker runs only tasks of submitters alice, carol, not of 'bob'");
  s.assignment.set_owner("carol");
  CHECK(guard.Execute(s.MakeAttempt()).output.ok());
  CHECK(s.calls == 1);

  pb::Capabilities open;  // no list: everyone's tasks run
  SubmitterGuard open_guard(&open, s.Leaf([](const Attempt&) { return HandlerReturned(HandlerOutput()); }));
  s.assignment.set_owner("bob");
  CHECK(open_guard.Execute(s.MakeAttempt()).output.ok());
  CHECK(s.calls == 2);
}

TEST_CASE("Timing reads the injected clock around the attempt, metrics count what came out") {
  Setup s;
  const absl::Time start = s.clock.Now();
  absl::Time seen_start;
  AttemptMetrics metrics;
  auto leaf = s.Leaf([&](const Attempt& a) {
    seen_start = a.started_at;
    s.clock.Advance(absl::Milliseconds(2500));
    AttemptResult r = HandlerReturned(HandlerOutput());
    r.finished.set_status(pb::TASK_STATUS_SUCCESS);
    return r;
  });
  MetricsDecorator chain(&metrics, std::make_unique<TimingDecorator>(&s.clock, std::move(leaf)));
  AttemptResult r = chain.Execute(s.MakeAttempt());
  CHECK(seen_start == start);
  CHECK(r.finished.started_at_ms() == absl::ToUnixMillis(start));
  CHECK(r.finished.finished_at_ms() == absl::ToUnixMillis(start) + 2500);
  CHECK(r.finished.execution_time_seconds() == Approx(2.5));
  CHECK(metrics.finished(pb::TASK_STATUS_SUCCESS) == 1);
  CHECK(metrics.finished(pb::TASK_STATUS_FAILED) == 0);
  const std::string rendered = metrics.run_time().Render("t", "h");
  CHECK(rendered.find("\nt_count 1\n") != std::string::npos);
  CHECK(rendered.find("\nt_sum 2.5\n") != std::string::npos);
}

TEST_CASE("The handler dispatch names an unknown type and reports a started process's pid") {
  Setup s;
  class PidHandler final : public Handler {
   public:
    absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
      ctx.on_process_start(4242);
      return HandlerOutput();
    }
  };
  HandlerRegistry handlers;
  handlers.Add("pid", std::make_unique<PidHandler>());
  HandlerDispatch dispatch(&handlers);
  s.assignment.set_task_type("nope");
  AttemptResult unknown = dispatch.Execute(s.MakeAttempt());
  CHECK_FALSE(unknown.handler_ran);
  CHECK(unknown.output.status().code() == absl::StatusCode::kNotFound);
  CHECK(unknown.output.status().message() == "this worker does not run task type 'nope'");
  s.assignment.set_task_type("pid");
  AttemptResult ran = dispatch.Execute(s.MakeAttempt());
  CHECK(ran.handler_ran);
  REQUIRE(s.events.progress.size() == 1);
  CHECK(s.events.progress[0].task_id() == "t1");
  CHECK(s.events.progress[0].pid() == 4242);
}

}  // namespace rc::worker
