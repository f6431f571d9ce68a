#include "coordinator/task_table.h"

#include <algorithm>

namespace rc::coordinator {

TaskEntry* TaskTable::Find(const std::string& task_id) const {
  auto it = by_id_.find(task_id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

TaskEntry* TaskTable::FindByIdempotencyKey(const std::string& key) const {
  auto it = by_idempotency_key_.find(key);
  return it == by_idempotency_key_.end() ? nullptr : Find(it->second);
}

TaskEntry* TaskTable::Insert(std::unique_ptr<TaskEntry> entry) {
  const pb::Task& t = entry->task;
  ++counts_[t.status()];
  order_.push_back(t.task_id());
  if (!t.spec().idempotency_key().empty()) by_idempotency_key_[t.spec().idempotency_key()] = t.task_id();
  TaskEntry* raw = entry.get();
  by_id_.emplace(t.task_id(), std::move(entry));
  return raw;
}

void TaskTable::Erase(const std::string& task_id) {
  auto it = by_id_.find(task_id);
  if (it == by_id_.end()) return;
  const pb::Task& t = it->second->task;
  --counts_[t.status()];
  if (!t.spec().idempotency_key().empty()) by_idempotency_key_.erase(t.spec().idempotency_key());
  order_.erase(std::find(order_.begin(), order_.end(), task_id));
  by_id_.erase(it);
}

void TaskTable::SetStatus(TaskEntry* e, pb::TaskStatus status) {
  --counts_[e->task.status()];
  ++counts_[status];
  e->task.set_status(status);
}

std::vector<const TaskEntry*> TaskTable::Newest(const TaskFilter& f) const {
  std::vector<const TaskEntry*> out;
  for (auto it = order_.rbegin(); it != order_.rend() && static_cast<int>(out.size()) < f.limit; ++it) {
    const TaskEntry* e = by_id_.at(*it).get();
    if (f.status != pb::TASK_STATUS_UNSPECIFIED && e->task.status() != f.status) continue;
    if (!f.task_type.empty() && e->task.spec().task_type() != f.task_type) continue;
    if (!f.worker_device_id.empty() && e->task.worker_device_id() != f.worker_device_id) continue;
    out.push_back(e);
  }
  return out;
}

}  // namespace rc::coordinator
