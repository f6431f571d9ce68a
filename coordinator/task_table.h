#pragma once
// Every task the coordinator knows: by id, in submission order, by idempotency key,
// with a count per status kept in step with every status change. Not thread-safe:
// the Coordinator guards it with its mutex.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "coordinator/links.h"
#include "coordinator/task_queue.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

struct TaskEntry {
  pb::Task task;
  ClassId cls = 0;  // its scheduling class
  QueueKey key;     // its place in line (priority, submission sequence)
  std::vector<std::pair<uint64_t, std::shared_ptr<TaskSink>>> watchers;
};

struct TaskFilter {
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;
  std::string task_type;
  std::string worker_device_id;
  int limit = 100;
};

class TaskTable {
 public:
  TaskEntry* Find(const std::string& task_id) const;
  TaskEntry* FindByIdempotencyKey(const std::string& key) const;
  // Adds a task with a new id; counts its current status.
  TaskEntry* Insert(std::unique_ptr<TaskEntry> entry);
  // Forgets a task entirely (a submit whose record could not be stored).
  void Erase(const std::string& task_id);
  // The only way a task's status changes, so that counts stay exact.
  void SetStatus(TaskEntry* e, pb::TaskStatus status);

  int64_t count(pb::TaskStatus status) const { return counts_[status]; }
  // Matching tasks, newest first, at most filter.limit.
  std::vector<const TaskEntry*> Newest(const TaskFilter& filter) const;

  template <typename Fn>
  void ForEach(Fn fn) {
    for (auto& [id, e] : by_id_) fn(*e);
  }

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<TaskEntry>> by_id_;
  std::vector<std::string> order_;  // task ids, oldest first
  absl::flat_hash_map<std::string, std::string> by_idempotency_key_;
  int64_t counts_[pb::TaskStatus_ARRAYSIZE] = {};
};

}  // namespace rc::coordinator
