#pragma once
// Scheduling policy as pure functions (STYLE.md rule 4): given a read-only view of
// workers and the requirements shared by one scheduling class, decide. No clock, no I/O,
// no locks; the Dispatcher owns state and commits decisions.
//
// Design assumption: a task's eligibility depends only on its class (task type +
// placement requirements), so the policy is asked once per class, never per task.
// ChooseWorker here scans every worker; PlacementIndex (placement_index.h) gives the
// same answers at cluster scale by keeping workers ordered by PlacementKey.

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include "absl/strings/string_view.h"

#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

// A scheduling class, as numbered by TaskQueue::Intern.
using ClassId = uint32_t;

// What every task of one scheduling class needs.
struct ClassSpec {
  std::string task_type;
  pb::Requirements requirements;  // timeout_seconds / max_retries are not part of a class
  std::string owner;  // the submitter (Task.owner): workers may accept only some
};

// One worker as the policy sees it.
struct WorkerView {
  const pb::Capabilities* capabilities = nullptr;
  int running = 0;        // attempts reserved on it
  bool accepting = true;  // online and not draining
  absl::string_view last_task_type;  // type of the last task placed there (affinity)
};

// True when the worker's capabilities meet every requirement of the class (free slots
// and liveness are not considered).
bool CanRun(const pb::Capabilities& worker, const ClassSpec& spec);

// Why `worker` can never run tasks of `spec`, e.g. "lacks tag 'gpu-box'"; "" if it can.
std::string Mismatch(const pb::Capabilities& worker, const ClassSpec& spec);

// How much ChooseWorker prefers an eligible worker for tasks of one type: the lower
// the better, compared field by field; equal keys go to the smaller device id.
struct PlacementKey {
  double load = 0;    // running / slots
  bool cold = false;  // the last task placed there was of another type
  int free_neg = 0;   // running - slots: more free slots first
  friend auto operator<=>(const PlacementKey&, const PlacementKey&) = default;
};
// The key of a worker with `running` of its `slots` taken; `warm`: the last task placed
// there was of the type being placed.
PlacementKey KeyFor(int running, int slots, bool warm);

// The worker to place one task of `spec` on, or -1 when none is eligible (accepting,
// a free slot, CanRun). Prefers the lowest load (running / slots); at equal load the
// worker that last ran this task type (warm caches), then more free slots, then the
// smaller device id so that decisions are deterministic (PlacementKey).
int ChooseWorker(std::span<const WorkerView> workers, const ClassSpec& spec);

// "" when some accepting worker in `workers` could run `spec` (busy or not); otherwise
// a sentence saying why none can, naming up to three workers and their first mismatch.
std::string UnschedulableReason(std::span<const WorkerView> workers, const ClassSpec& spec);

}  // namespace rc::coordinator
