#pragma once
// Queued tasks indexed by scheduling class: tasks with the same task type and placement
// requirements share a class, and each class keeps its tasks ordered by priority, then
// submission order. Dispatch looks only at the head of each non-empty class, so it
// never scans the whole queue, and a class no worker can run never blocks the others.
// Not thread-safe: the Coordinator guards it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "coordinator/scheduling/scheduling_policy.h"

namespace rc::coordinator {

// Orders the queue: higher priority first, then lower sequence (earlier submit).
struct QueueKey {
  int priority = 0;
  uint64_t seq = 0;
  friend bool operator<(const QueueKey& a, const QueueKey& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
  }
  friend bool operator==(const QueueKey& a, const QueueKey& b) = default;
};

class TaskQueue {
 public:
  // The class of `type` + `requirements` + `owner` (workers may accept only some
  // submitters) + `depth` (Task.depth: slots lent by waiting tasks go to deeper tasks
  // only), created on first use. Stable for the process.
  ClassId Intern(const std::string& type, const pb::Requirements& requirements, const std::string& owner = "",
                 int32_t depth = 0);
  const ClassSpec& spec(ClassId id) const { return classes_[id].spec; }
  size_t class_count() const { return classes_.size(); }

  // `task_id` is a view, not a copy (a million queued ids would cost ~50 MB): it must
  // stay valid until the entry is removed; the Coordinator passes the id its task
  // table holds.
  void Push(ClassId id, QueueKey key, absl::string_view task_id);
  // False when no such entry was queued.
  bool Remove(ClassId id, QueueKey key);
  // The best entry of a class, if any.
  std::optional<std::pair<QueueKey, absl::string_view>> Head(ClassId id) const;

  // Classes that hold at least one task.
  const absl::flat_hash_set<ClassId>& non_empty() const { return non_empty_; }
  size_t size() const { return size_; }
  // Queued tasks per priority value (index 0..4).
  int64_t count_by_priority(int priority) const { return by_priority_[priority]; }

  // Canonical key of a class (exposed for tests): equal for equal requirements
  // regardless of tag order; ignores timeout_seconds and max_retries.
  static std::string ClassKey(const std::string& type, const pb::Requirements& requirements,
                              const std::string& owner = "", int32_t depth = 0);

 private:
  struct Class {
    ClassSpec spec;
    absl::btree_map<QueueKey, absl::string_view> tasks;
  };
  std::vector<Class> classes_;
  absl::flat_hash_map<std::string, ClassId> by_key_;
  absl::flat_hash_set<ClassId> non_empty_;
  size_t size_ = 0;
  int64_t by_priority_[5] = {0, 0, 0, 0, 0};
};

}  // namespace rc::coordinator
