#pragma once
// Recovery: rebuilding the state from the store at startup, and retention of finished
// tasks. A recovered task resumes its life where its record left it: pending and queued
// ones go back in line (or wait out their backoff), assigned and running ones stay
// reserved on their worker, which has restart_grace to come back and report them.

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/core/submissions.h"

namespace rc::coordinator {

class Recovery : protected Submissions {
 protected:
  using Submissions::Submissions;

  // Everything the store returned for recovery.
  void RecoverLocked(RecoveryData& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records given directly (tests and tools); finished ones are held until trimmed.
  void RecoverTasksLocked(std::vector<pb::Task> tasks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a retention pass is due at `now_ms` (at most one a minute, one at a time).
  bool PruneDueLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the finished tasks the store listed as past retention; returns the ids to
  // delete from the store (none: the pass is over).
  std::vector<std::string> PruneLocked(const absl::StatusOr<std::vector<FinishedRef>>& old)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  // One unfinished (or, from RecoverTasksLocked, any) stored task back into memory.
  void RestoreLocked(pb::Task task, int64_t payload_bytes, bool payload_loaded, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace rc::coordinator
