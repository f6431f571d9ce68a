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
#include <span>
#include <string>
#include "absl/strings/string_view.h"

#include "coordinator/scheduling/feasibility.h"

namespace rc::coordinator {

// One worker as the policy sees it.
struct WorkerView {
  const pb::Capabilities* capabilities = nullptr;
  int running = 0;        // attempts reserved on it, waiting or not
  bool accepting = true;  // online and not draining
  absl::string_view last_task_type;  // type of the last task placed there (affinity)
  // Slot lending, as in WorkerState: the waiting attempts among `running`, the deepest
  // of their depths (-1: none), the waiting attempts allowed per slot (the coordinator's
  // max_task_depth; 0: no lending).
  int waiting = 0;
  int32_t deepest_waiting = -1;
  int32_t max_task_depth = 0;
};

// The view's state, as the feasibility table's kNotNow rows read it.
inline WorkerState StateOf(const WorkerView& w) {
  return WorkerState{w.running, w.capabilities->slots(), w.accepting, w.waiting, w.deepest_waiting, w.max_task_depth};
}

// How much ChooseWorker prefers an eligible worker for tasks of one type: the lower
// the better, compared field by field; equal keys go to the smaller device id.
struct PlacementKey {
  double load = 0;    // busy / slots
  bool cold = false;  // the last task placed there was of another type
  int free_neg = 0;   // busy - slots: more free slots first
  friend auto operator<=>(const PlacementKey&, const PlacementKey&) = default;
};
// The key of a worker with `busy` of its `slots` taken (running - waiting: a waiting
// attempt lends its slot); `warm`: the last task placed there was of the type being placed.
PlacementKey KeyFor(int busy, int slots, bool warm);

// The worker to place one task of `spec` on, or -1 when none passes every row of the
// feasibility table (feasibility.h). Prefers the lowest load ((running - waiting) /
// slots); at equal load the worker that last ran this task type (warm caches), then more
// free slots, then the smaller device id so that decisions are deterministic (PlacementKey).
int ChooseWorker(std::span<const WorkerView> workers, const ClassSpec& spec);

// "" when some accepting worker in `workers` could run `spec` (busy or not: no
// kInfeasible row fails); otherwise a sentence saying why none can, naming up to three
// workers and the first row each fails. Workers not accepting are not counted.
std::string UnschedulableReason(std::span<const WorkerView> workers, const ClassSpec& spec);

}  // namespace rc::coordinator
