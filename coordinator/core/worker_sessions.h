#pragma once
// WorkerSessions: what a worker's connection tells the coordinator about its attempts.
// The protocol is level-triggered (worker_service.proto): a (re)connecting worker states
// what it runs and the coordinator reconciles; every message carries the connection's
// epoch, and a message about anything but the current attempt of a task on that worker
// (IsCurrentAttempt) is stale and changes nothing. Liveness is a pure function of the
// worker's record and the time (CheckLiveness); the sweep here acts on its verdict.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/core/payload_loader.h"
#include "coordinator/core/workflows.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

class WorkerSessions : protected Workflows {  // issue 14: the task graph sits below the sessions
 protected:
  using Workflows::Workflows;

  // A worker (re)connects: a new epoch, its old connection closed, its reported
  // attempts (and which of them wait: Register.waiting) reconciled, then dispatch. INVALID_ARGUMENT for bad capabilities,
  // UNAVAILABLE after Shutdown.
  absl::StatusOr<uint64_t> RegisterLocked(const pb::Register& reg, std::shared_ptr<WorkerLink> link, bool draining,
                                          Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Heartbeat, started, progress, waiting (slot lending), finished, draining and
  // deregister of one message; fenced off when `epoch` is not the device's current
  // connection. Dispatches when slots may have come free (or been lent).
  void HandleMessageLocked(const std::string& device_id, uint64_t epoch, const pb::WorkerMessage& msg, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Heard> HeardForLocked(const std::string& device_id, uint64_t epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DisconnectedLocked(const std::string& device_id, uint64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Workers whose heartbeats stopped go offline; the attempts of those gone past the
  // grace period fail (and retry). Dispatches when anything changed.
  void SweepLivenessLocked(int64_t now_ms, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<pb::Worker> DrainLocked(const std::string& device_id, bool drain, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Assignments the loader could not complete: each attempt ends as failed (retried).
  void UnsentLocked(const std::vector<PayloadLoader::Unread>& unread, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  void ReconcileLocked(WorkerEntry* w, const pb::Register& reg, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartedLocked(WorkerEntry* w, const pb::TaskStarted& s, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProgressLocked(WorkerEntry* w, const pb::TaskProgress& p, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a live usage sample: a new revision and a snapshot to each watcher, but no
  // store write (samples live in memory only: worker_service.proto TaskProgress).
  void SampledLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a result; returns the operation whose write stores it (this one, or an
  // earlier one for a report sent again), 0 when there is nothing to store (a stale
  // attempt). A report sent again whose first write failed is written again here.
  uint64_t FinishLocked(WorkerEntry* w, const pb::TaskFinished& f, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A deregistering worker's unfinished attempts: back to the queue at once, not
  // counted as failures.
  void HandBackLocked(WorkerEntry* w, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoseWorkerTasksLocked(WorkerEntry* w, const std::string& why, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replaces the attempts of `w` waiting on their subtree (whole set, level-triggered);
  // attempts it does not hold, or whose task is unknown, are ignored. True when the set
  // changed: lent slots may take a task now (or no longer).
  bool SetWaitingLocked(WorkerEntry* w, const google::protobuf::RepeatedPtrField<pb::RunningAttempt>& attempts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The task of a current attempt of `w`, or nullptr when the attempt is stale.
  TaskEntry* CurrentLocked(const WorkerEntry& w, const std::string& task_id, int32_t attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace rc::coordinator
