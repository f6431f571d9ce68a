#pragma once
// The tasks the coordinator holds in memory: every unfinished task and the most recently
// finished ones (the rest are in the store only), by id, in submission order, by
// idempotency key. The counts per status and type cover every task, in memory or evicted
// to the store, kept in step with every status change. Not thread-safe: the Coordinator
// guards it with its mutex.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/core/links.h"
#include "coordinator/scheduling/task_queue.h"
#include "coordinator/store/task_store.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

// What a submit answers.
struct SubmitResult {
  std::string task_id;
  pb::TaskStatus status;
  bool existing = false;  // an earlier task with the same idempotency key
};

struct TaskEntry {
  // task.task_id() is set before the entry enters the table and never reassigned: the
  // table and the queue key on views of it.
  pb::Task task;
  ClassId cls = 0;  // its scheduling class
  QueueKey key;     // its place in line (priority, submission sequence)
  std::vector<std::pair<uint64_t, std::shared_ptr<TaskSink>>> watchers;
  // The highest attempt number any worker reported holding (not stored): after a
  // restart the store may lag behind an assignment, and a number must never be reused.
  int32_t highest_attempt_seen = 0;
  // The operation (Coordinator::Mutate) that last marked it for writing: a task that
  // changes several times in one operation is written once, as it ends.
  uint64_t written_in = 0;
  // Its current attempt's assignment is not written yet (TaskDispatch::AssignLocked).
  bool assignment_unwritten = false;
  // The attempt last written as assigned or running, and the operation that wrote it
  // first: until that is durable, the attempt's outcome reaches no waiter (0: read from
  // the store, durable; kAttemptNotWritten: not written, so its outcome waits for its own
  // write).
  int32_t attempt_written = 0;
  uint64_t attempt_op = 0;
  static constexpr uint64_t kAttemptNotWritten = ~uint64_t{0};
  // Placed on a worker with its submit (TaskLifecycle::Place), with an idempotency key: the
  // assignment that goes to the worker once the record storing both is durable; null when
  // there is none to send.
  std::unique_ptr<pb::Assignment> placed;
  // Placed on a worker with its submit, without an idempotency key: sent at once, so the
  // task runs while its submit commits, and its worker may report on it (started, ended)
  // before that commit settles (Submissions::AcceptedLocked clears it).
  bool sent_unstored = false;
  // Submits with the same idempotency key that arrived before this one was stored.
  std::vector<std::function<void(absl::StatusOr<SubmitResult>)>> waiting_submits;
  // The size of spec.payload, set before the entry enters the table and fixed, and
  // whether task.spec holds it (false: only the store does; see Coordinator).
  int64_t payload_bytes = 0;
  bool payload_in_ram = true;
  // Its submit is durable (TaskLifecycle::Accept; every recovered task): a PENDING task
  // with this set waits for its dependencies, one without is not stored yet.
  bool accepted = false;
};

class TaskTable {
 public:
  TaskEntry* Find(absl::string_view task_id) const;
  // Idempotency keys are per submitter and, for children, per parent task: another
  // owner's key, or the same key under another parent, never matches.
  TaskEntry* FindByIdempotencyKey(const std::string& owner, const std::string& key,
                                  const std::string& parent_task_id = "") const;
  // Adds a task with a new id; counts its current status.
  TaskEntry* Insert(std::unique_ptr<TaskEntry> entry);
  // Forgets a task entirely (not stored, or pruned by retention).
  void Erase(const std::string& task_id);
  // Drops a finished task from memory; it still counts (it is in the store).
  void Evict(const std::string& task_id);
  // Counts finished tasks kept only in the store (at recovery).
  void CountStored(const std::string& task_type, pb::TaskStatus status, int64_t n);
  // A finished task kept only in the store was pruned: it no longer counts.
  void ForgetStored(const std::string& task_type, pb::TaskStatus status) { CountStored(task_type, status, -1); }
  // How many finished tasks are in memory.
  size_t finished_in_memory() const { return finished_in_memory_; }
  // The finished task in memory that finished longest ago, or nullptr.
  TaskEntry* OldestFinished();

  int64_t count(pb::TaskStatus status) const { return counts_[status]; }
  // Tasks of `owner` not yet in a terminal state.
  int64_t unfinished(const std::string& owner) const {
    auto it = unfinished_by_owner_.find(owner);
    return it == unfinished_by_owner_.end() ? 0 : it->second.tasks;
  }
  // Payload bytes of the tasks of `owner` not yet in a terminal state.
  int64_t unfinished_bytes(const std::string& owner) const {
    auto it = unfinished_by_owner_.find(owner);
    return it == unfinished_by_owner_.end() ? 0 : it->second.bytes;
  }
  // Task type -> count per status (for /metrics).
  using Counts = std::array<int64_t, pb::TaskStatus_ARRAYSIZE>;
  const absl::flat_hash_map<std::string, Counts>& counts_by_type() const { return by_type_; }
  // Matching tasks in memory, newest first, at most filter.limit.
  std::vector<const TaskEntry*> Newest(const TaskFilter& filter) const;
  // Ids of finished tasks in memory that finished before `cutoff_ms`, oldest submitted
  // first, at most `limit`.
  std::vector<std::string> FinishedBefore(int64_t cutoff_ms, size_t limit) const;
  size_t size() const { return by_id_.size(); }

  template <typename Fn>
  void ForEach(Fn fn) {
    for (auto& [id, e] : by_id_) fn(*e);
  }

 private:
  // The only way a task's status changes, so that counts stay exact: only TaskLifecycle
  // (task_lifecycle.h), which checks the move against its table first, may call it.
  friend class TaskLifecycle;
  void SetStatus(TaskEntry* e, pb::TaskStatus status);

  struct Unfinished {
    int64_t tasks = 0;
    int64_t bytes = 0;
  };
  void HoldOwner(const TaskEntry& e);
  void ReleaseOwner(const TaskEntry& e);
  // Removes the entry from every index, not from the counts.
  void Unlink(absl::string_view task_id);

  // Keyed by a view of the entry's own id: a copy would cost ~60 bytes a task.
  absl::flat_hash_map<absl::string_view, std::unique_ptr<TaskEntry>> by_id_;
  absl::btree_map<uint64_t, TaskEntry*> by_sequence_;  // submission order
  absl::flat_hash_map<std::string, std::string> by_idempotency_key_;
  int64_t counts_[pb::TaskStatus_ARRAYSIZE] = {};
  absl::flat_hash_map<std::string, Counts> by_type_;
  absl::flat_hash_map<std::string, Unfinished> unfinished_by_owner_;  // entries at 0 tasks are removed
  // Ids in the order their tasks finished; ids of tasks since gone are skipped lazily.
  std::deque<std::string> finished_order_;
  size_t finished_in_memory_ = 0;
};

}  // namespace rc::coordinator
