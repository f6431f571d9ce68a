#pragma once
// Persistence seam. The Coordinator keeps its working state in memory and writes every
// task record through a TaskStore; a submit is acknowledged only after the store says
// the record is durable. SqliteTaskStore (sqlite_task_store.h) is the durable one;
// MemoryTaskStore keeps records in this process (tests, and `store: memory`).

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/histogram.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

class TaskStore {
 public:
  virtual ~TaskStore() = default;
  // Inserts or replaces each record by task_id. `done` runs exactly once, possibly on
  // another thread, after the records are durable (OK) or could not be written
  // (UNAVAILABLE / INTERNAL with the reason). Never blocks the caller on disk.
  virtual void Write(std::vector<pb::Task> tasks, std::function<void(absl::Status)> done) = 0;
  // Removes records (retention). Same contract for `done`; unknown ids are ignored.
  virtual void Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) = 0;
  // Every stored record, for recovery at startup.
  virtual absl::StatusOr<std::vector<pb::Task>> LoadAll() = 0;
  // Commits what is queued, runs its callbacks, then refuses further writes (their
  // `done` gets UNAVAILABLE at once). Call before destroying what callbacks reach.
  virtual void Close() {}
  // Commit latency, for /metrics (null when the store does not measure it).
  virtual const Histogram* commit_latency() const { return nullptr; }
};

class MemoryTaskStore final : public TaskStore {
 public:
  void Write(std::vector<pb::Task> tasks, std::function<void(absl::Status)> done) override;
  void Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) override;
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override;

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, pb::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
