#pragma once
// The task graph (DESIGN.md "Workflows"): which unfinished tasks are children of a task,
// and which pending tasks wait for a task to end. Both indexes hold only unfinished
// tasks, which are always in memory, so they point at table entries (8 bytes a link,
// where an id would cost about 60); the layer that owns them (Workflows) unlinks a task
// when it ends or is forgotten. The edges themselves are stored in the records
// (parent_task_id, spec.after), so that recovery rebuilds these indexes from them.
// Not thread-safe: the Coordinator guards it with its mutex.
//
// The decisions are pure functions below: whether a dependency's condition holds for
// how it ended, and the messages of the ends the graph causes.

#include <cstddef>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "coordinator/core/task_table.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

// "ok", "any" or "notok" (UNSPECIFIED reads as ok).
absl::string_view ConditionName(pb::DependencyCondition c);
// Whether a dependency that ended `ended` (a terminal status) meets `c`. Once a task has
// ended this never changes: a condition that does not hold then never will.
bool ConditionHolds(pb::DependencyCondition c, pb::TaskStatus ended);
// Why a task ends CANCELLED when a dependency ended against its condition:
// "dependency task-X ended failed; this task needed ok".
std::string NeverMetMessage(absl::string_view dep, pb::TaskStatus ended, pb::DependencyCondition c);
// Why an unfinished child ends CANCELLED when its parent ends:
// "cancelled: parent task-X ended failed".
std::string ParentEndedMessage(absl::string_view parent, pb::TaskStatus ended);
// Whether its parent's end (`parent_end`, terminal) cancels this child: a parent that
// failed, timed out or was cancelled takes along its children unless they were submitted
// with parent_close ABANDON (UNSPECIFIED reads as cancel); one that succeeded leaves them
// running (DESIGN.md "Ends propagate").
bool EndsWithParent(const pb::Task& child, pb::TaskStatus parent_end);

class TaskGraph {
 public:
  // `child` (unfinished) was submitted by `parent` (unfinished).
  void AddChild(const std::string& parent, TaskEntry* child);
  // The unfinished children of `parent` linked so far.
  size_t Children(const std::string& parent) const;
  // Removes and returns the children of `parent` (it ended), in no particular order.
  std::vector<TaskEntry*> TakeChildren(const std::string& parent);

  // `task` (pending) waits for `dep` (unfinished) to end.
  void AddDependent(const std::string& dep, TaskEntry* task);
  // Removes and returns the tasks waiting for `dep` (it ended).
  std::vector<TaskEntry*> TakeDependents(const std::string& dep);

  // Removes `e` from every index it is in as a child or a dependent (it ended, or is
  // forgotten): its parent's children and the dependents of each task in spec.after.
  void Unlink(TaskEntry* e);

  // Links held (tests, diagnostics).
  size_t links() const { return links_; }

 private:
  using Set = absl::flat_hash_set<TaskEntry*>;
  static std::vector<TaskEntry*> Take(absl::flat_hash_map<std::string, Set>& index, const std::string& key,
                                      size_t* links);
  static void Remove(absl::flat_hash_map<std::string, Set>& index, const std::string& key, TaskEntry* e,
                     size_t* links);

  absl::flat_hash_map<std::string, Set> children_;    // by parent id
  absl::flat_hash_map<std::string, Set> dependents_;  // by dependency id
  size_t links_ = 0;
};

}  // namespace rc::coordinator
