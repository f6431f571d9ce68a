// BlockingCalls: where the coordinator's handlers that may wait on the store run.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "coordinator/grpc/blocking_calls.h"

namespace rc::coordinator {
namespace {

TEST_CASE("BlockingCalls runs work off the caller's thread, and one stuck job leaves the other thread free") {
  BlockingCalls calls(2);
  const std::thread::id caller = std::this_thread::get_id();
  absl::Notification release, stuck_started, other_ran;
  std::thread::id stuck_on;
  calls.Run([&] {
    stuck_on = std::this_thread::get_id();
    stuck_started.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
  });
  REQUIRE(stuck_started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  calls.Run([&] { other_ran.Notify(); });
  CHECK(other_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));  // while the first still waits
  CHECK(stuck_on != caller);
  release.Notify();
  calls.Stop();
}

TEST_CASE("BlockingCalls: Stop runs what is queued, and work given after Stop runs on the caller") {
  std::atomic<int> ran{0};
  BlockingCalls calls(1);
  absl::Notification release;
  calls.Run([&] { release.WaitForNotificationWithTimeout(absl::Seconds(10)); });
  for (int i = 0; i < 5; ++i) calls.Run([&] { ran++; });
  release.Notify();
  calls.Stop();
  CHECK(ran == 5);
  std::thread::id ran_on;
  calls.Run([&] { ran_on = std::this_thread::get_id(); });
  CHECK(ran_on == std::this_thread::get_id());
  calls.Stop();  // idempotent
}

}  // namespace
}  // namespace rc::coordinator
