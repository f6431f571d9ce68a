#pragma once
// Workflows: the mechanism around the task graph (task_graph.h, DESIGN.md "Workflows").
// A child records its parent, root, depth and ancestors and inherits the parent's owner;
// a task with `after` dependencies stays PENDING until each has ended. When a task ends
// (any terminal status, however it got there) PropagateEndsLocked, run by every
// operation before its writes are gathered, cancels its unfinished children (unless they
// abandon it) and resolves the tasks waiting for it: the last dependency met queues a
// task, one that can never be met cancels it. Those ends propagate in turn, so a cascade
// runs to its end within the operation that started it, and is written with it.
//
// Design assumption: graph state changes only through TaskLifecycle (status and
// waiting_for); this layer decides which events happen and keeps the indexes, the queue
// and the workers in step.

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "coordinator/core/task_graph.h"
#include "coordinator/core/dispatch.h"

namespace rc::coordinator {

// Records read from the store before an operation took the lock, by task id (nullopt:
// no record): tasks that were not in memory then (finished and evicted, or unknown).
using StoredRecords = absl::flat_hash_map<std::string, absl::StatusOr<std::optional<pb::Task>>>;

class Workflows : protected TaskDispatch {
 protected:
  using TaskDispatch::TaskDispatch;

  // Dispatch for the layers above: ends first propagate (PropagateEndsLocked), so that a
  // slot freed by a parent's end never goes to a child that end cancels. It hides
  // TaskDispatch::DispatchLocked on purpose: every layer above calls this one.
  void DispatchLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // What one dependency means for a task that names it now.
  struct DependencyState {
    enum Kind {
      kUnended,  // it has not ended: wait (entry is set)
      kMet,      // it ended as needed
      kNever,    // it ended otherwise: `why` says how
      kUnknown,  // no such task
      kLookup,   // not in memory and not read from the store: look it up first
      kError,    // the store could not be read: `why`
    };
    Kind kind = kUnknown;
    TaskEntry* entry = nullptr;
    std::string why;
    const pb::Task* record = nullptr;  // the task, in memory or from the store (access checks)
  };
  DependencyState DependencyLocked(const pb::Dependency& d, const StoredRecords& stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state of `d` when it ended `how`: met or never.
  static DependencyState Ended(const pb::Dependency& d, pb::TaskStatus how);

  // Ends an unfinished task CANCELLED with `why`: out of the queue, its worker told to
  // stop the attempt (the slot stays reserved until the worker confirms). Cancel and the
  // cascades use it. The lifecycle's refusal for a finished task.
  absl::Status StopLocked(TaskEntry* e, const std::string& why, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the consequences of every end since the last call (see the file comment), and
  // dispatches when a task was queued. Every operation runs it (Mutate).
  void PropagateEndsLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A refusal when `parent` may not have one more child (max_task_depth,
  // max_children_per_task), or OK.
  absl::Status ChildLimitsLocked(const TaskEntry& parent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new task's place in the tree, from its parent (nullptr: top-level; the task's id
  // is set): parent, root, depth, ancestors, owner.
  static void PlaceInTree(const pb::Task* parent, pb::Task* t);
  // Links a task into the graph: as a child of its parent when that is in memory and
  // unfinished, and as a dependent of each task in `unended`.
  void LinkLocked(TaskEntry* e, const std::vector<TaskEntry*>& unended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A pending task whose record was not stored is about to be forgotten: out of the
  // graph, and the tasks waiting for it end (it never existed for the store).
  void UnstoredLocked(TaskEntry* e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TaskGraph graph_ ABSL_GUARDED_BY(mu_);

 private:
  // `dep` ended `how`: resolves `waiting` on it (queued: true when it now queues).
  bool ResolveLocked(TaskEntry* waiting, const std::string& dep, pb::TaskStatus how, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace rc::coordinator
