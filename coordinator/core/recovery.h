#pragma once
// Recovery: rebuilding the state from the store at startup, and retention of finished
// tasks. A recovered task resumes its life where its record left it: queued ones go back
// in line (or wait out their backoff), assigned and running ones stay reserved on their
// worker, which has restart_grace to come back and report them, pending ones wait for
// the dependencies that have not ended and queue when none is left. The graph's edges
// come back from the records: children from parent_task_id, dependencies from
// spec.after with the status of each dependency (in memory, or read from the store
// before the lock: `named`); a dependency or parent that ended while the coordinator
// was down has its consequence now.

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/core/submissions.h"

namespace rc::coordinator {

class Recovery : protected Submissions {
 protected:
  using Submissions::Submissions;

  // Everything the store returned for recovery.
  void RecoverLocked(RecoveryData& data, const StoredRecords& named, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records given directly (tests and tools); finished ones are held until trimmed.
  void RecoverTasksLocked(std::vector<pb::Task> tasks, const StoredRecords& named, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ids the graph of `tasks` names (parents, dependencies) that are not among them:
  // read these from the store for `named`. Pure.
  static std::vector<std::string> NamedElsewhere(const std::vector<const pb::Task*>& tasks);
  // Whether a retention pass is due at `now_ms` (at most one a minute, one at a time).
  bool PruneDueLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the finished tasks the store listed as past retention; returns the ids to
  // delete from the store (none: the pass is over).
  std::vector<std::string> PruneLocked(const absl::StatusOr<std::vector<FinishedRef>>& old)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  // One unfinished (or, from RecoverTasksLocked, any) stored task back into memory;
  // a pending one is left to RelinkLocked.
  TaskEntry* RestoreLocked(pb::Task task, int64_t payload_bytes, bool payload_loaded, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The graph of the restored tasks: children linked to their parents, pending tasks to
  // their dependencies, then accepted (queued when nothing is left to wait for); ends
  // that happened while down cancel whom they cancel.
  void RelinkLocked(std::vector<TaskEntry*> restored, const StoredRecords& named, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A pending restored task: waits for its unended dependencies, or ends CANCELLED.
  void ResumePendingLocked(TaskEntry* e, const StoredRecords& named, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace rc::coordinator
