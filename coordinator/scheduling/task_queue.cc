#include "coordinator/scheduling/task_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rc::coordinator {

std::string TaskQueue::ClassKey(const std::string& type, const pb::Requirements& r, const std::string& owner,
                                int32_t depth) {
  std::vector<std::string> tags(r.required_tags().begin(), r.required_tags().end());
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  // \x1f separates fields: it cannot appear in a validated tag or type name.
  return absl::StrCat(type, "\x1f", r.min_cpu_cores(), "\x1f", r.min_memory_gb(), "\x1f",
                      r.min_storage_gb(), "\x1f", r.gpu_required(), "\x1f", r.internet_required(),
                      "\x1f", r.required_platform(), "\x1f", r.required_role(), "\x1f",
                      absl::StrJoin(tags, ","), "\x1f", r.target_device_id(), "\x1f", owner, "\x1f", depth, "\x1f", r.browser_required());
}

ClassId TaskQueue::Intern(const std::string& type, const pb::Requirements& requirements, const std::string& owner,
                          int32_t depth) {
  std::string key = ClassKey(type, requirements, owner, depth);
  auto it = by_key_.find(key);
  if (it != by_key_.end()) return it->second;
  ClassId id = static_cast<ClassId>(classes_.size());
  Class c;
  c.spec.task_type = type;
  c.spec.owner = owner;
  c.spec.depth = depth;
  c.spec.requirements = requirements;
  c.spec.requirements.clear_timeout_seconds();
  c.spec.requirements.clear_max_retries();
  classes_.push_back(std::move(c));
  by_key_.emplace(std::move(key), id);
  return id;
}

void TaskQueue::Push(ClassId id, QueueKey key, absl::string_view task_id) {
  auto [it, inserted] = classes_[id].tasks.emplace(key, task_id);
  if (!inserted) return;
  non_empty_.insert(id);
  ++size_;
  ++by_priority_[key.priority];
}

bool TaskQueue::Remove(ClassId id, QueueKey key) {
  Class& c = classes_[id];
  if (c.tasks.erase(key) == 0) return false;
  if (c.tasks.empty()) non_empty_.erase(id);
  --size_;
  --by_priority_[key.priority];
  return true;
}

std::optional<std::pair<QueueKey, absl::string_view>> TaskQueue::Head(ClassId id) const {
  const Class& c = classes_[id];
  if (c.tasks.empty()) return std::nullopt;
  return *c.tasks.begin();
}

}  // namespace rc::coordinator
