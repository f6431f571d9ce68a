#include "coordinator/core/task_graph.h"

#include "absl/strings/str_cat.h"
#include "common/task_names.h"

namespace rc::coordinator {

absl::string_view ConditionName(pb::DependencyCondition c) {
  switch (c) {
    case pb::DEPENDENCY_CONDITION_ANY: return "any";
    case pb::DEPENDENCY_CONDITION_NOTOK: return "notok";
    default: return "ok";
  }
}

bool ConditionHolds(pb::DependencyCondition c, pb::TaskStatus ended) {
  switch (c) {
    case pb::DEPENDENCY_CONDITION_ANY: return IsTerminal(ended);
    case pb::DEPENDENCY_CONDITION_NOTOK: return IsTerminal(ended) && ended != pb::TASK_STATUS_SUCCESS;
    default: return ended == pb::TASK_STATUS_SUCCESS;
  }
}

std::string NeverMetMessage(absl::string_view dep, pb::TaskStatus ended, pb::DependencyCondition c) {
  return absl::StrCat("dependency ", dep, " ended ", StatusName(ended), "; this task needed ", ConditionName(c));
}

std::string ParentEndedMessage(absl::string_view parent, pb::TaskStatus ended) {
  return absl::StrCat("cancelled: parent ", parent, " ended ", StatusName(ended));
}

bool EndsWithParent(const pb::Task& child, pb::TaskStatus parent_end) {
  return parent_end != pb::TASK_STATUS_SUCCESS && child.spec().parent_close() != pb::PARENT_CLOSE_ABANDON;
}

void TaskGraph::AddChild(const std::string& parent, TaskEntry* child) {
  if (children_[parent].insert(child).second) ++links_;
}

size_t TaskGraph::Children(const std::string& parent) const {
  auto it = children_.find(parent);
  return it == children_.end() ? 0 : it->second.size();
}

std::vector<TaskEntry*> TaskGraph::TakeChildren(const std::string& parent) {
  return Take(children_, parent, &links_);
}

void TaskGraph::AddDependent(const std::string& dep, TaskEntry* task) {
  if (dependents_[dep].insert(task).second) ++links_;
}

std::vector<TaskEntry*> TaskGraph::TakeDependents(const std::string& dep) { return Take(dependents_, dep, &links_); }

void TaskGraph::Unlink(TaskEntry* e) {
  const pb::Task& t = e->task;
  if (!t.parent_task_id().empty()) Remove(children_, t.parent_task_id(), e, &links_);
  for (const pb::Dependency& d : t.spec().after()) Remove(dependents_, d.task_id(), e, &links_);
}

std::vector<TaskEntry*> TaskGraph::Take(absl::flat_hash_map<std::string, Set>& index, const std::string& key,
                                        size_t* links) {
  auto it = index.find(key);
  if (it == index.end()) return {};
  std::vector<TaskEntry*> out(it->second.begin(), it->second.end());
  *links -= out.size();
  index.erase(it);
  return out;
}

void TaskGraph::Remove(absl::flat_hash_map<std::string, Set>& index, const std::string& key, TaskEntry* e,
                       size_t* links) {
  auto it = index.find(key);
  if (it == index.end() || it->second.erase(e) == 0) return;
  --*links;
  if (it->second.empty()) index.erase(it);
}

}  // namespace rc::coordinator
