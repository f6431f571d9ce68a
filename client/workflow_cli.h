#pragma once
// The CLI's workflow pieces (DESIGN.md "Workflows"): `submit --after ID[:ok|any|notok]`
// and `--parent-close`, and `tree ID`, which walks a task's subtree with ListTasks by
// parent, within bounds on depth and count.

#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "common/flags.h"
#include "common/json_view.h"

namespace rc::client {

// "task-1" (ok), "task-1:ok", "task-1:any", "task-1:notok". INVALID_ARGUMENT
// "--after: expected ID[:ok|any|notok], got 'x'" or naming the bad condition.
absl::StatusOr<pb::Dependency> ParseAfterFlag(const std::string& value);
// Adds --after (repeatable) and --parent-close to `spec`.
absl::Status ApplyWorkflowFlags(const ParsedFlags& f, pb::TaskSpec* spec);

// A task and its descendants as `tree` fetched them.
struct TaskTree {
  pb::Task task;
  std::vector<TaskTree> children;  // oldest first
  bool children_truncated = false;  // more children exist than were fetched
};

struct TreeLimits {
  int max_depth = 16;   // levels below the root (the coordinator's max_task_depth is 8 by default)
  int max_tasks = 1000;  // tasks fetched in all, the root included
};

// The subtree of `task_id`, breadth first, one ListTasks(parent) per task fetched.
absl::StatusOr<TaskTree> FetchTree(Client& client, const std::string& task_id, const TreeLimits& limits);

// One line per task, two spaces of indent per level: "ID  STATUS  TYPE" plus what it
// waits for or why it ended; "... more children not shown" where the walk stopped.
std::string FormatTree(const TaskTree& tree);
// The task object (TaskToJson) with "children": [...] and, where cut, "children_truncated": true.
Json TreeToJson(const TaskTree& tree);

// `tree ID [--limit N] [--json]`.
int RunTree(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err);

}  // namespace rc::client
