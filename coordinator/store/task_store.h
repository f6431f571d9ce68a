#pragma once
// Persistence seam. The Coordinator keeps unfinished tasks (and a small cache of finished
// ones) in memory and writes every task record through a TaskStore; a submit is
// acknowledged only after the store says the record is durable. Finished tasks that left
// the cache, and queued payloads beyond the memory budget, are read back from the store.
// SqliteTaskStore (sqlite_task_store.h) is the durable one; MemoryTaskStore keeps records
// in this process (tests, and `store: memory`).
//
// The read methods may wait for the disk: never call them while holding a lock that other
// work needs (the Coordinator calls them outside its state lock). The base class answers
// them by scanning LoadAll(), which is enough for test stores.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/histogram.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

// Which tasks a listing wants (ListTasks).
struct TaskFilter {
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;
  std::optional<std::string> owner;  // only this submitter's tasks (the submit role)
  std::string task_type;
  std::string worker_device_id;
  std::string parent_task_id;  // "": any; else only direct children of this task
  int limit = 100;
};

// True when `t` passes every field of `f` (limit aside).
bool Matches(const TaskFilter& f, const pb::Task& t);

// A stored unfinished task for recovery. Its payload is left out (payload_loaded false)
// once the payloads read so far reach the budget given to LoadForRecovery.
struct RecoveredTask {
  pb::Task task;
  int64_t payload_bytes = 0;
  bool payload_loaded = true;
};

// What a restart needs, without every finished record.
struct RecoveryData {
  std::vector<RecoveredTask> unfinished;  // in submission (sequence) order
  // Finished tasks kept in the store: task type, status, how many.
  std::vector<std::tuple<std::string, pb::TaskStatus, int64_t>> finished_counts;
  uint64_t max_sequence = 0;
  std::string max_task_id;  // "" when the store is empty
};

// A finished task due for retention.
struct FinishedRef {
  std::string task_id;
  std::string task_type;
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;
};

// One task's row as a store writes it: the record serialized once, without its payload,
// next to the columns the store indexes and the payload (issue 18: the Coordinator used to
// hand the writer a copy of the whole task, which it serialized and destroyed there).
struct TaskRecord {
  std::string task_id;
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;
  int64_t finished_at_ms = 0;
  uint64_t sequence = 0;
  std::string owner;
  std::string task_type;
  std::string worker_device_id;
  std::string idempotency_key;
  std::string parent_task_id;
  std::string record;   // pb::Task with an empty spec.payload, serialized
  std::string payload;  // spec.payload; "" keeps the payload stored before (TaskStore::Write)
};

// The row of `t` as it is: `record` is `t` without its payload, which goes to `payload`.
// `t` is left as it was (its payload is lent out while it is serialized).
TaskRecord ToRecord(pb::Task& t);
std::vector<TaskRecord> ToRecords(std::vector<pb::Task> tasks);
// The task a row holds, its payload back in spec.payload. DATA_LOSS when the record does
// not parse.
absl::StatusOr<pb::Task> ParseRecord(const TaskRecord& r);

// What a store has written since it opened (bench, tests).
struct StoreWriteStats {
  int64_t records = 0;  // task records written (versions of one task within one commit count once)
  // Bytes of the values handed to SQLite for them: keys, columns, records and payloads
  // (an integer counts 8).
  int64_t bytes = 0;
  int64_t pages_written = 0;  // database pages SQLite wrote to disk (to its WAL), page_size bytes each
  int64_t page_size = 0;
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;
  // Inserts or replaces each record by task_id. `done` runs exactly once, after the
  // records are durable (OK) or could not be written (UNAVAILABLE / INTERNAL with the
  // reason): inline, on the store's own thread, or where PostCompletionsTo says. Never
  // blocks the caller on disk.
  // A task's payload never changes: a record with an empty `payload` keeps the payload
  // stored with an earlier record of the same task (the Coordinator drops payloads from
  // memory and writes the rest of the record).
  virtual void Write(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) = 0;
  // Write for records nobody waits to see durable (a dispatch's attempt, a task started,
  // a result its worker keeps until acknowledged): the store may hold them a moment to
  // commit them together with the next Write, so that they do not stand between a
  // submit and its commit. Same contract as Write, and records still commit in call
  // order across both. The default writes at once.
  virtual void WriteUnhurried(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) {
    Write(std::move(records), std::move(done));
  }
  // Removes records (retention). Same contract for `done`; unknown ids are ignored.
  virtual void Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) = 0;
  // Every stored record.
  virtual absl::StatusOr<std::vector<pb::Task>> LoadAll() = 0;
  // Commits what is queued, runs (or posts) its callbacks, then refuses further writes
  // (their `done` gets UNAVAILABLE at once). Call before destroying what callbacks reach.
  virtual void Close() {}
  // A store that commits on a thread of its own hands each commit's `done` callbacks,
  // in commit order, to `post` (the Coordinator's completion thread) instead of running
  // them there: its writer then only writes (it may still run those of a small commit
  // with nothing queued behind it, where the hand-off would cost more than it saves).
  // Null (the default): it runs them itself.
  // Returns true when the store will post there; stores that complete inline ignore it
  // and return false.
  virtual bool PostCompletionsTo(std::function<void(std::function<void()>)> post) {
    (void)post;
    return false;
  }
  // Commit latency, for /metrics (null when the store does not measure it).
  virtual const Histogram* commit_latency() const { return nullptr; }
  // Zero when the store does not count.
  virtual StoreWriteStats write_stats() const { return {}; }

  // ---- Reads (see the file comment). Errors: UNAVAILABLE / DATA_LOSS naming the store. ----

  // Unfinished tasks with payloads up to `payload_budget_bytes` in total, and counts of
  // the finished ones.
  virtual absl::StatusOr<RecoveryData> LoadForRecovery(int64_t payload_budget_bytes);
  // One committed record with its payload; nullopt when there is none.
  virtual absl::StatusOr<std::optional<pb::Task>> Get(const std::string& task_id);
  // Finished tasks (terminal status) matching `filter`, newest submitted first, at most
  // filter.limit, with payloads.
  virtual absl::StatusOr<std::vector<pb::Task>> ListFinished(const TaskFilter& filter);
  // The task of `owner` with idempotency `key` submitted under `parent_task_id` ("": a
  // top-level task; keys of children are scoped to their parent): its id and stored status.
  virtual absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> FindByIdempotencyKey(
      const std::string& owner, const std::string& key, const std::string& parent_task_id = "");
  // Finished tasks that finished before `cutoff_ms`, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<FinishedRef>> FinishedBefore(int64_t cutoff_ms, size_t limit);
  // The stored payloads of `task_ids` (an id without a record is missing from the answer;
  // a task with an empty payload maps to "").
  virtual absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ReadPayloads(
      const std::vector<std::string>& task_ids);
};

class MemoryTaskStore final : public TaskStore {
 public:
  // Keeps each record parsed (tasks, and `store: memory`).
  void Write(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) override;
  void Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) override;
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override;
  absl::StatusOr<RecoveryData> LoadForRecovery(int64_t payload_budget_bytes) override;
  absl::StatusOr<std::optional<pb::Task>> Get(const std::string& task_id) override;
  absl::StatusOr<std::vector<pb::Task>> ListFinished(const TaskFilter& filter) override;
  absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> FindByIdempotencyKey(
      const std::string& owner, const std::string& key, const std::string& parent_task_id = "") override;
  absl::StatusOr<std::vector<FinishedRef>> FinishedBefore(int64_t cutoff_ms, size_t limit) override;
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ReadPayloads(
      const std::vector<std::string>& task_ids) override;

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, pb::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
