// The worker's time on an injected clock: waits that a FakeClock ends when advanced,
// attempt deadlines and the drain's wait, and the reconnect backoff policy. Nothing here
// sleeps for the timed part; the few real waits are bounded and only check that
// something did NOT happen yet, or wait for another thread to get there.
#include <catch2/catch.hpp>

#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "tests/unit/event_recorder.h"
#include "worker/execution/executor.h"
#include "worker/session/reconnect_backoff.h"

namespace rc::worker {
namespace {

// How long a negative check ("not yet") looks, in real time.
constexpr absl::Duration kNotYet = absl::Milliseconds(150);

pb::Assignment Sleep(const std::string& id, double seconds, double timeout) {
  pb::Assignment a;
  a.set_task_id(id);
  a.set_attempt(1);
  a.set_task_type("sleep");
  a.set_payload(absl::StrCat(R"({"duration": )", seconds, "}"));
  a.set_timeout_seconds(timeout);
  return a;
}

struct Fixture {
  FakeClock clock;
  HandlerRegistry handlers;
  Recorder events;
  std::unique_ptr<Executor> executor;
  Fixture() {
    AddBuiltinHandlers(&handlers);
    executor = std::make_unique<Executor>(2, &handlers, &events, pb::Capabilities(), &clock);
  }
  // Until `n` attempts run and `waiters` threads wait on the clock (bounded).
  void Settle(int n, int waiters) {
    for (int i = 0; i < 2000 && executor->running() < n; ++i) absl::SleepFor(absl::Milliseconds(1));
    REQUIRE(executor->running() == n);
    REQUIRE(clock.WaitForWaiters(waiters));
  }
};

}  // namespace

TEST_CASE("A fake clock ends a wait when advanced to its deadline, not before, and at once on its condition") {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  bool result = true;
  const absl::Time deadline = clock.Now() + absl::Seconds(5);
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&flag), deadline);
  });
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(absl::Milliseconds(4999));
  absl::SleepFor(kNotYet);
  CHECK(clock.WaitForWaiters(1, absl::ZeroDuration()));  // still waiting
  clock.Advance(absl::Milliseconds(1));
  waiter.join();
  CHECK_FALSE(result);  // the deadline, not the condition

  std::thread second([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&flag), clock.Now() + absl::Hours(1));
  });
  REQUIRE(clock.WaitForWaiters(1));
  {
    absl::MutexLock lock(&mu);
    flag = true;
  }
  second.join();
  CHECK(result);
  CHECK(clock.WaitForWaiters(0, absl::ZeroDuration()));
}

TEST_CASE("A stop token's wait ends at its deadline on its clock") {
  FakeClock clock;
  StopToken token(clock.Now() + absl::Seconds(10), &clock);
  bool stopped = false;
  std::thread sleeper([&] { stopped = token.WaitUntil(clock.Now() + absl::Seconds(60)); });
  REQUIRE(clock.WaitForWaiters(1));
  CHECK_FALSE(token.expired());
  clock.Advance(absl::Seconds(10));
  sleeper.join();
  CHECK(stopped);
  CHECK(token.expired());
  CHECK(token.stopped());
  CHECK_FALSE(token.cancelled());
}

TEST_CASE("A task whose deadline passes on the fake clock ends TIMEOUT then, and not before") {
  Fixture f;
  const absl::Time start = f.clock.Now();
  f.executor->Assign(Sleep("t1", 30, 10));
  f.Settle(1, 1);  // the sleep waits on its token
  f.clock.Advance(absl::Seconds(9));
  CHECK_FALSE(f.events.WaitFinished(1, kNotYet));
  REQUIRE(f.clock.WaitForWaiters(1));  // still sleeping
  f.clock.Advance(absl::Seconds(2));
  REQUIRE(f.events.WaitFinished(1));
  absl::MutexLock lock(&f.events.mu);
  const pb::TaskFinished& e = f.events.finished[0];
  CHECK(e.status() == pb::TASK_STATUS_TIMEOUT);
  CHECK(e.error_message() == "timed out after 10s");
  // Times are the fake clock's: started at `start`, ended 11 s later.
  CHECK(e.started_at_ms() == absl::ToUnixMillis(start));
  CHECK(e.finished_at_ms() == absl::ToUnixMillis(start) + 11000);
  CHECK(e.execution_time_seconds() == Approx(11.0));
  REQUIRE(f.events.started.size() == 1);
  CHECK(f.events.started[0].started_at_ms() == absl::ToUnixMillis(start));
  CHECK(f.executor->finished(pb::TASK_STATUS_TIMEOUT) == 1);
}

TEST_CASE("A sleep within its timeout ends SUCCESS when the fake clock reaches its end") {
  Fixture f;
  f.executor->Assign(Sleep("t1", 5, 30));
  f.Settle(1, 1);
  f.clock.Advance(absl::Milliseconds(4900));
  CHECK_FALSE(f.events.WaitFinished(1, kNotYet));
  REQUIRE(f.clock.WaitForWaiters(1));
  f.clock.Advance(absl::Milliseconds(100));
  REQUIRE(f.events.WaitFinished(1));
  absl::MutexLock lock(&f.events.mu);
  CHECK(f.events.finished[0].status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.events.finished[0].result() == R"({"slept_for":5.0})");
  CHECK(f.events.finished[0].execution_time_seconds() == Approx(5.0));
}

TEST_CASE("Waiting for the executor to be idle gives up at a deadline on its clock") {
  Fixture f;
  f.executor->Assign(Sleep("t1", 100, 300));
  f.Settle(1, 1);
  bool idle = true;
  std::thread drain([&] { idle = f.executor->WaitIdle(f.clock.Now() + absl::Seconds(5)); });
  REQUIRE(f.clock.WaitForWaiters(2));  // the sleep and the drain
  f.clock.Advance(absl::Seconds(5));
  drain.join();
  CHECK_FALSE(idle);
  CHECK(f.executor->HeldAttempts().size() == 1);
  f.executor->Cancel("t1", 1);
  REQUIRE(f.events.WaitFinished(1));
  // Reported before it leaves the held set (executor.cc): idle a moment later.
  bool now_idle = false;
  for (int i = 0; i < 2000 && !now_idle; ++i) {
    now_idle = f.executor->WaitIdle(f.clock.Now());
    if (!now_idle) absl::SleepFor(absl::Milliseconds(1));
  }
  CHECK(now_idle);
}

TEST_CASE("Reconnect backoff doubles from the initial wait up to the maximum, jittered, and resets") {
  ReconnectBackoff b(absl::Milliseconds(200), absl::Seconds(1));
  CHECK(b.Next(1.0) == absl::Milliseconds(200));
  CHECK(b.Next(1.0) == absl::Milliseconds(400));
  CHECK(b.Next(0.5) == absl::Milliseconds(400));  // half of 800
  CHECK(b.Next(1.0) == absl::Seconds(1));         // 1600 capped
  CHECK(b.Next(1.0) == absl::Seconds(1));
  CHECK(b.Next(0.75) == absl::Milliseconds(750));
  CHECK(b.Next(0.1) == absl::Milliseconds(500));  // jitter never below half
  CHECK(b.Next(7) == absl::Seconds(1));           // nor above the step
  b.Reset();
  CHECK(b.Next(1.0) == absl::Milliseconds(200));
  CHECK(b.Next(1.0) == absl::Milliseconds(400));
}

}  // namespace rc::worker
