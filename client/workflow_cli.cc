#include "client/workflow_cli.h"

#include <algorithm>
#include <deque>
#include <ostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_common.h"
#include "common/status_macros.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"

namespace rc::client {
namespace {

constexpr int kMaxListLimit = 10000;  // ListTasks answers at most this many at once

void AppendLine(const TaskTree& node, int level, std::string* out) {
  const pb::Task& t = node.task;
  absl::StrAppend(out, std::string(2 * level, ' '), t.task_id(), "  ", StatusName(t.status()), "  ",
                  t.spec().task_type());
  if (t.waiting_for_size() > 0) absl::StrAppend(out, "  waiting for ", absl::StrJoin(t.waiting_for(), ", "));
  if (!IsTerminal(t.status()) && !t.unschedulable_reason().empty()) {
    absl::StrAppend(out, "  (", t.unschedulable_reason(), ")");
  }
  if (t.status() != pb::TASK_STATUS_SUCCESS && !t.error_message().empty()) {
    absl::StrAppend(out, "  error: ", t.error_message());
  }
  absl::StrAppend(out, "\n");
  for (const TaskTree& c : node.children) AppendLine(c, level + 1, out);
  if (node.children_truncated) absl::StrAppend(out, std::string(2 * (level + 1), ' '), "... more children not shown\n");
}

}  // namespace

absl::StatusOr<pb::Dependency> ParseAfterFlag(const std::string& value) {
  pb::Dependency d;
  const size_t colon = value.rfind(':');
  d.set_task_id(value.substr(0, colon));
  if (d.task_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--after: expected ID[:ok|any|notok], got '", value, "'"));
  }
  if (colon == std::string::npos) {
    d.set_condition(pb::DEPENDENCY_CONDITION_OK);
    return d;
  }
  absl::StatusOr<pb::DependencyCondition> c = ParseDependencyCondition(value.substr(colon + 1));
  if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat("--after ", value, ": ", c.status().message()));
  d.set_condition(*c);
  return d;
}

absl::Status ApplyWorkflowFlags(const ParsedFlags& f, pb::TaskSpec* spec) {
  for (const std::string& v : f.GetAll("after")) {
    ASSIGN_OR_RETURN(*spec->add_after(), ParseAfterFlag(v));
  }
  if (auto v = f.Get("parent-close")) {
    absl::StatusOr<pb::ParentClose> p = ParseParentClose(*v);
    if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat("--parent-close: ", p.status().message()));
    spec->set_parent_close(*p);
  }
  return absl::OkStatus();
}

absl::StatusOr<TaskTree> FetchTree(Client& client, const std::string& task_id, const TreeLimits& limits) {
  TaskTree root;
  ASSIGN_OR_RETURN(root.task, client.Get(task_id));
  int fetched = 1;
  // Breadth first. A node's children vector is filled once, before any pointer into it
  // is queued, so the pointers stay valid.
  std::deque<std::pair<TaskTree*, int>> todo = {{&root, 0}};
  while (!todo.empty()) {
    auto [node, level] = todo.front();
    todo.pop_front();
    const int room = level >= limits.max_depth ? 0 : limits.max_tasks - fetched;
    pb::ListTasksRequest req;
    req.set_parent_task_id(node->task.task_id());
    // One more than there is room for tells whether the list was cut (with no room,
    // one asks only whether there are children at all).
    req.set_limit(std::min(room + 1, kMaxListLimit));
    ASSIGN_OR_RETURN(std::vector<pb::Task> children, client.List(req));
    // A coordinator that does not know parent_task_id would answer every task: keep
    // only real children.
    const std::string& parent_id = node->task.task_id();  // a structured binding cannot be captured (clang)
    std::erase_if(children, [&parent_id](const pb::Task& c) { return c.parent_task_id() != parent_id; });
    if (static_cast<int>(children.size()) > room) {
      node->children_truncated = true;
      children.resize(room);  // the newest `room` (ListTasks answers newest first)
    }
    std::sort(children.begin(), children.end(), [](const pb::Task& a, const pb::Task& b) {
      return std::pair(a.created_at_ms(), a.task_id()) < std::pair(b.created_at_ms(), b.task_id());
    });
    fetched += static_cast<int>(children.size());
    node->children.reserve(children.size());
    for (pb::Task& c : children) node->children.push_back(TaskTree{std::move(c), {}, false});
    for (TaskTree& c : node->children) todo.emplace_back(&c, level + 1);
  }
  return root;
}

std::string FormatTree(const TaskTree& tree) {
  std::string out;
  AppendLine(tree, 0, &out);
  return out;
}

Json TreeToJson(const TaskTree& tree) {
  Json j = TaskToJson(tree.task);
  j["children"] = Json::array();
  for (const TaskTree& c : tree.children) j["children"].push_back(TreeToJson(c));
  if (tree.children_truncated) j["children_truncated"] = true;
  return j;
}

int RunTree(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  if (f.positional().size() != 1) return Fail(err, absl::InvalidArgumentError("tree: expected one task id"));
  TreeLimits limits;
  if (auto v = f.Get("limit")) {
    absl::StatusOr<int64_t> n = FlagIntInRange("limit", *v, 1, kMaxListLimit);
    if (!n.ok()) return Fail(err, n.status());
    limits.max_tasks = static_cast<int>(*n);
  }
  absl::StatusOr<TaskTree> tree = FetchTree(client, f.positional()[0], limits);
  if (!tree.ok()) return Fail(err, tree.status());
  out << (f.Has("json") ? TreeToJson(*tree).dump(2) + "\n" : FormatTree(*tree));
  return kExitOk;
}

}  // namespace rc::client
