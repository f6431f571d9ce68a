#pragma once
// Store tests: write records and wait for the commit (bounded: 10 s).

#include <catch2/catch.hpp>

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

inline absl::Status WriteSync(TaskStore& store, std::vector<pb::Task> tasks) {
  absl::Notification done;
  absl::Status result;
  store.Write(ToRecords(std::move(tasks)), [&](absl::Status s) {
    result = s;
    done.Notify();
  });
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return result;
}

}  // namespace rc::coordinator
