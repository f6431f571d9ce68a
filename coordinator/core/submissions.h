#pragma once
// Submissions: what clients ask of a task's life. A submit is validated, checked against
// its idempotency key (scoped to the owner and, for a child, the parent task), its
// dependencies, its owner's and its parent's limits, and recorded PENDING (or ASSIGNED,
// when it was placed on a free worker with its submit: TaskDispatch::PlaceLocked); once
// that record is durable the task is accepted: QUEUED and dispatched, sent to the worker
// it was placed on, or PENDING until its dependencies end (workflows.h). Cancel ends an
// unfinished task at once and tells its worker to stop the attempt.

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

  // What a submit round read before taking the lock.
  struct Lookups {
    // The owner whose idempotency keys were looked up: the parent's for a child.
    std::string owner;
    std::vector<std::optional<Found>> keys;  // per spec index, for specs with a key
    // Dependencies (and the parent) that were not in memory when looked for.
    StoredRecords records;
    uint64_t evictions_before = 0;  // keyed_evictions_ when the keys were looked up
  };
  // What each entry of a batch stands for, across rounds: the task it was answered with
  // (new or existing), so that a later entry's after_index can name it.
  struct BatchIds {
    enum State : uint8_t { kOpen, kRefused, kTask };
    explicit BatchIds(size_t n) : state(n, kOpen), ids(n) {}
    std::vector<State> state;
    std::vector<std::string> ids;
    // Entries answered with a finished task read from the store: its status.
    absl::flat_hash_map<size_t, pb::TaskStatus> stored_status;
  };

  // Under the lock, before a round's store reads: fills `looked` with the owner (the
  // parent's, when it is in memory) and marks (as absent from `records`) the parent
  // and the dependencies that are not in memory, to be read from the store.
  std::vector<std::string> NotInMemoryLocked(const std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                                             const std::vector<absl::Status>& invalid, const Submitter& by,
                                             Lookups* looked) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One round of SubmitBatch for the specs at `todo`: refusals and repeated keys are
  // answered through fx.callbacks; new tasks are recorded and returned. Specs whose
  // lookups may be outdated (an eviction since; a dependency that left memory since) or
  // whose after_index names an entry still open go to `again`.
  Recorded SubmitLocked(std::vector<pb::TaskSpec>& specs, const std::vector<size_t>& todo,
                        const std::vector<absl::Status>& invalid, const Lookups& looked, const Answer& answer_at,
                        const Submitter& by, BatchIds* batch, std::vector<size_t>* again, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  // Resolves spec `i`'s dependencies: the unended ones in `unended`, the first that can
  // never be met in `never`. A refusal naming after[k]; nullopt when it must wait for
  // another round.
  std::optional<absl::Status> DependenciesLocked(const pb::TaskSpec& spec, size_t i, const Lookups& looked,
                                                 const BatchIds& batch, const TaskAccess& may_depend_on,
                                                 std::vector<TaskEntry*>* unended, std::string* never)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A refusal of the owner's limits for a payload of `bytes`, or OK.
  absl::Status OwnerLimitsLocked(const std::string& owner, int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AcceptLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Its submit's record is not durable yet: pending, or placed on a worker with it.
  static bool NotStoredYet(const TaskEntry& e) {
    return !e.accepted && (e.task.status() == pb::TASK_STATUS_PENDING || e.placed != nullptr || e.sent_unstored);
  }
};

}  // namespace rc::coordinator
