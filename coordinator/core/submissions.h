#pragma once
// Submissions: what clients ask of a task's life. A submit is validated, checked against
// its idempotency key and its owner's limits, and recorded PENDING; once that record is
// durable the task is accepted (QUEUED) and dispatched. Cancel ends an unfinished task
// at once and tells its worker to stop the attempt.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/core/worker_sessions.h"
#include "retire_cluster/v1/client_service.pb.h"

namespace rc::coordinator {

class Submissions : protected WorkerSessions {
 protected:
  using WorkerSessions::WorkerSessions;

  // Answers the submit at an index of its batch.
  using Answer = std::function<void(size_t, absl::StatusOr<SubmitResult>)>;
  // An idempotency key looked up in the store: the first task's id and status, if any.
  using Found = absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>>;
  // The tasks one submit round recorded (PENDING until stored), and their batch indices.
  struct Recorded {
    std::vector<std::string> ids;
    std::vector<size_t> slots;
  };

  // One round of SubmitBatch for the specs at `todo`: refusals and repeated keys are
  // answered through fx.callbacks; new tasks are recorded and returned. Keys whose store
  // lookup (`stored`) may be outdated by an eviction since `evictions_before` go to
  // `again`.
  Recorded SubmitLocked(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                        const std::vector<absl::Status>& invalid, const std::vector<std::optional<Found>>& stored,
                        uint64_t evictions_before, const Answer& answer_at, const std::string& owner,
                        std::vector<size_t>* again, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The store answered for tasks recorded by SubmitLocked: accepts them (or forgets
  // them when the write failed) and dispatches. Returns each one's answer and moves the
  // submits that waited on the same key to `waiting`.
  std::vector<absl::StatusOr<SubmitResult>> AcceptedLocked(
      const std::vector<std::string>& ids, const absl::Status& stored,
      std::vector<std::vector<std::function<void(absl::StatusOr<SubmitResult>)>>>* waiting, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancel of a task in memory; false when it is not (finished and evicted, or unknown).
  bool CancelLocked(const std::string& task_id,
                    const std::function<void(absl::StatusOr<pb::CancelTaskResponse>)>& done, const TaskAccess& allow,
                    const std::string& by, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes every worker link and aborts every watcher; later submits are refused.
  void ShutdownLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  // A refusal of the owner's limits for a payload of `bytes`, or OK.
  absl::Status OwnerLimitsLocked(const std::string& owner, int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AcceptLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace rc::coordinator
