#pragma once
// The feasibility table: every rule that decides whether a worker may take a task of a
// scheduling class, each written once as a row (a name, a predicate, an explanation).
// Filtering workers (ChooseWorker, PlacementIndex) and explaining why a task waits
// (Mismatch, UnschedulableReason) both walk these rows, so they cannot disagree, and a new
// requirement is one new row.
//
// A row that fails means one of two things, as in Ray's scheduling policy (INFEASIBLE vs
// FAILED): kInfeasible, the worker as registered can never run the class (it lacks a
// capability; waiting does not help), or kNotNow, it could, but not at this moment
// (offline, draining, no free slot).
//
// Design assumption: kInfeasible rows read only the worker's Capabilities and the class;
// kNotNow rows read only its WorkerState and the class's depth. So PlacementIndex evaluates
// the capability rows once per worker and class (capabilities change on registration only)
// and the state rows on every change of a worker's state. The depth matters only for slot
// lending (DESIGN.md "Workflows", "No deadlock"), and monotonically: a worker that may take
// a task at some depth may take one at every greater depth (LowestReadyDepth).
// Pure functions: no clock, no I/O, no locks.

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
  // Of its tasks in their workflow (Task.depth, 0 for a top-level task): a slot lent by a
  // waiting task goes only to a task deeper than it (the "lent slot" row).
  int32_t depth = 0;
};

// What a worker is doing now, as the kNotNow rows read it.
//
// Slot lending: an attempt waiting on its subtree (a call waiting for a descendant is in
// flight) lends its slot, so the worker may run `running - waiting < slots` attempts that
// are not waiting, with at most `slots * max_task_depth` waiting. A waiting task waits only
// on deeper tasks, so capacity that exists only by lending (`running >= slots`) goes only
// to a task deeper than the deepest waiting one there: that task can help end a wait,
// while a fan-out of top-level parents cannot fill the worker with waiters whose children
// then find no slot.
struct WorkerState {
  int running = 0;         // attempts reserved on it, waiting or not
  int slots = 0;           // its capabilities' slots, as the caller last read them
  bool accepting = false;  // connected, online and not draining (nor drained by an admin)
  int waiting = 0;               // of `running`, the attempts waiting on their subtree
  int32_t deepest_waiting = -1;  // the greatest depth among those (-1: none waits)
  int32_t max_task_depth = 0;    // waiting attempts allowed per slot (0: no lending)
};

enum class Feasibility : uint8_t {
  kFeasible,    // may take a task of the class now
  kNotNow,      // could run the class, but not now: try again later
  kInfeasible,  // never on this worker as it registered
};

// One row of the table.
struct Check {
  absl::string_view name;  // stable, e.g. "cpu", "free slot": for tests and logs
  Feasibility failure;     // what failing it means: kInfeasible or kNotNow
  bool (*passes)(const pb::Capabilities& caps, const WorkerState& state, const ClassSpec& spec);
  // Why a worker that fails the row cannot take the task, completing "<device id> ...",
  // e.g. "has no GPU". Only called when `passes` is false.
  std::string (*explain)(const pb::Capabilities& caps, const WorkerState& state, const ClassSpec& spec);
};

// Every row: the kInfeasible rows first, in the order explanations name them (the first
// failing row is the one reported), then the kNotNow rows.
std::span<const Check> Checks();

// The first row the worker fails for `spec`, or null when it passes every row (it may take
// a task of the class now). A worker that is both busy and unfit is reported unfit.
const Check* FirstFailure(const pb::Capabilities& caps, const WorkerState& state, const ClassSpec& spec);
Feasibility Evaluate(const pb::Capabilities& caps, const WorkerState& state, const ClassSpec& spec);
// FirstFailure(...) == nullptr, the filter's way: whether the worker may take a task of
// `spec` now.
bool Feasible(const pb::Capabilities& caps, const WorkerState& state, const ClassSpec& spec);

// The kInfeasible rows alone: true when the worker's capabilities meet every requirement
// of the class (free slots and liveness are not considered).
bool CanRun(const pb::Capabilities& caps, const ClassSpec& spec);
// Why `caps` can never run tasks of `spec`, e.g. "lacks tag 'gpu-box'"; "" if it can.
std::string Mismatch(const pb::Capabilities& caps, const ClassSpec& spec);

// The kNotNow rows alone: whether a worker in `state` can take a task at `depth` now,
// given that its capabilities fit. At depth 0 (the default) that is "for a task at any
// depth", lent slots aside being the only difference depth makes.
bool Ready(const WorkerState& state, int32_t depth = 0);
// The smallest depth of a task the worker in `state` may take now (Ready(state, d) holds
// exactly for d >= it): 0 when a slot of its own is free, one more than the deepest waiting
// attempt when only lent slots are, -1 when it may take none.
int32_t LowestReadyDepth(const WorkerState& state);
// The "accepting" row alone: whether the worker takes tasks at all, busy or not. What
// UnschedulableReason and PlacementIndex::Runnable count.
bool Accepting(const WorkerState& state);

}  // namespace rc::coordinator
