// The worker's outbox: what the stream's reader sends itself never wakes the writer
// thread (issue 18).
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "common/clock.h"
#include "worker/session/outbox.h"

namespace rc::worker {

TEST_CASE("Results queued under a hold, released and taken in one step, leave the writer asleep") {
  FakeClock clock;  // the writer's deadline never comes in real time
  Outbox outbox(&clock);
  std::atomic<bool> woke{false};
  std::thread writer([&] {
    outbox.Wait(clock.Now() + absl::Hours(1));
    woke = true;
  });
  absl::SleepFor(absl::Milliseconds(50));  // the writer is waiting

  outbox.Hold();
  pb::TaskStarted started;
  started.set_task_id("task-1");
  outbox.Started(started);
  pb::TaskFinished finished;
  finished.set_task_id("task-1");
  finished.set_attempt(1);
  finished.set_status(pb::TASK_STATUS_SUCCESS);
  outbox.Finished(finished);
  pb::WorkerMessage msg;
  REQUIRE(outbox.ReleaseAndTake(&msg));
  CHECK(msg.started_size() == 1);
  CHECK(msg.finished_size() == 1);
  absl::SleepFor(absl::Milliseconds(50));
  CHECK(outbox.wakeups() == 0);  // the writer's condition never held: nothing was left for it
  CHECK_FALSE(woke.load());

  // Released, the next event is the writer's to send.
  outbox.Finished(finished);
  writer.join();
  CHECK(woke.load());
  CHECK(outbox.wakeups() >= 1);
  pb::WorkerMessage next;
  REQUIRE(outbox.Take(&next));
  CHECK(next.finished_size() == 1);
}

}  // namespace rc::worker
