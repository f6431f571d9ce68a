#pragma once
// TaskReads: what clients read, over memory and the store. Unfinished tasks and the
// latest finished ones are in memory; every other finished task is read from the store
// outside the lock (its stored record is final).

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/core/recovery.h"

namespace rc::coordinator {

class TaskReads : protected Recovery {
 public:
  // Documented at the Coordinator, which exposes them.
  absl::StatusOr<pb::Task> GetTask(const std::string& task_id) const;
  absl::StatusOr<std::vector<pb::Task>> ListTasks(const TaskFilter& filter) const;
  std::vector<pb::Worker> ListWorkers(const std::string& device_id) const;
  pb::Stats Stats() const;
  std::map<std::string, std::map<std::string, int64_t>> CountsByType() const;
  size_t tasks_in_memory() const;
  int64_t payload_bytes_in_memory() const;
  void Unwatch(const std::string& task_id, uint64_t watch_id);

 protected:
  using Recovery::Recovery;

  // A finished task no longer in memory, from the store (nullopt: unknown). UNAVAILABLE
  // when the store fails.
  absl::StatusOr<std::optional<pb::Task>> StoredFinished(const std::string& task_id) const;
  // Watches the tasks in memory (snapshot now, then every change); the others are
  // answered NOT_FOUND for now and listed in `elsewhere` as (index, watch id) for
  // WatchStored.
  std::vector<absl::StatusOr<uint64_t>> WatchLocked(const std::vector<std::string>& task_ids,
                                                    const std::shared_ptr<TaskSink>& sink, const TaskAccess& allow,
                                                    std::vector<std::pair<size_t, uint64_t>>* elsewhere, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The second half of a watch, outside the lock: finished tasks from the store.
  void WatchStored(const std::vector<std::string>& task_ids, const std::shared_ptr<TaskSink>& sink,
                   const TaskAccess& allow, const std::vector<std::pair<size_t, uint64_t>>& elsewhere,
                   std::vector<absl::StatusOr<uint64_t>>* out) const ABSL_LOCKS_EXCLUDED(mu_);
};

}  // namespace rc::coordinator
