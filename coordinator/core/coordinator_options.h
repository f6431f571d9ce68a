#pragma once
// What the Coordinator is configured with, and the callback types of its client side.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/core/task_table.h"
#include "coordinator/core/task_validation.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

using SubmitBatchDone = std::function<void(std::vector<absl::StatusOr<SubmitResult>>)>;

// Whether the caller may act on one task, decided by the client API (coordinator/api)
// from the task it is shown; the core only asks, under its lock, and passes a refusal on.
// An empty TaskAccess allows everything (in-process callers and tests).
using TaskAccess = std::function<absl::Status(const pb::Task& task)>;

// Who submits a task: the owner recorded in it (the client token's name, "" for the
// unnamed loopback caller) and, for a child (DESIGN.md "Workflows"), the task whose
// running attempt submitted it. Built from an owner name alone for a top-level submit.
// `may_depend_on` checks each task named in spec.after (by task_id) before the submit
// may wait for it: its refusal is passed on, naming the dependency. Empty: any task.
struct Submitter {
  Submitter() = default;
  Submitter(std::string owner_name) : owner(std::move(owner_name)) {}  // NOLINT(runtime/explicit): top-level
  Submitter(const char* owner_name) : owner(owner_name) {}             // NOLINT(runtime/explicit): top-level
  std::string owner;
  std::string parent_task_id;  // "" = a top-level task
  TaskAccess may_depend_on;
};

struct CoordinatorOptions {
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration offline_after = absl::Seconds(5);
  absl::Duration reconnect_grace = absl::Seconds(2);
  absl::Duration retry_backoff_initial = absl::Seconds(1);
  absl::Duration retry_backoff_max = absl::Seconds(60);
  absl::Duration retention = absl::Hours(24 * 7);
  // After a restart, how long a worker has to come back and report the attempts the
  // store says it holds (workers back off up to 10 s between reconnects).
  absl::Duration restart_grace = absl::Seconds(15);
  TaskLimits limits;
  // Unfinished tasks one named submitter (client token) may have at once; 0 = no limit.
  // The unnamed loopback caller (no client tokens configured) is not limited.
  int64_t max_unfinished_per_owner = 0;
  // Payload bytes of unfinished tasks one named submitter may have at once; 0 = no
  // limit. Like max_unfinished_per_owner, not applied to the unnamed caller.
  int64_t max_unfinished_bytes_per_owner = 0;
  // Payload bytes held in memory (queued, running and cached finished tasks together);
  // beyond it a newly queued task's payload is left in the store until its dispatch.
  int64_t memory_payload_budget_bytes = int64_t{192} << 20;
  // Finished tasks kept in memory (the latest to finish); older ones are read from the store.
  int64_t finished_cache_tasks = 10000;
  // Workflows (DESIGN.md): a child deeper than this is refused (a top-level task has
  // depth 0); a task may have at most max_children_per_task unfinished children. The
  // depth also caps the waiting attempts per worker slot (slot lending).
  int32_t max_task_depth = 8;
  int32_t max_children_per_task = 1000;
  // Uniform in [0, 1): the jitter of retry backoff. Injected so tests are exact.
  std::function<double()> random;
};

}  // namespace rc::coordinator
