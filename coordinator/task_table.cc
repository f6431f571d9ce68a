#include "coordinator/task_table.h"

namespace rc::coordinator {

TaskEntry* TaskTable::Find(absl::string_view task_id) const {
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
  ++by_type_[t.spec().task_type()][t.status()];
  by_sequence_[entry->key.seq] = entry.get();
  if (!t.spec().idempotency_key().empty()) by_idempotency_key_[t.spec().idempotency_key()] = t.task_id();
  TaskEntry* raw = entry.get();
  by_id_.emplace(raw->task.task_id(), std::move(entry));
  return raw;
}

void TaskTable::Erase(const std::string& task_id) {
  auto it = by_id_.find(task_id);
  if (it == by_id_.end()) return;
  const pb::Task& t = it->second->task;
  --counts_[t.status()];
  --by_type_[t.spec().task_type()][t.status()];
  if (!t.spec().idempotency_key().empty()) by_idempotency_key_.erase(t.spec().idempotency_key());
  by_sequence_.erase(it->second->key.seq);
  by_id_.erase(it);
}

void TaskTable::SetStatus(TaskEntry* e, pb::TaskStatus status) {
  --counts_[e->task.status()];
  ++counts_[status];
  Counts& by_type = by_type_[e->task.spec().task_type()];
  --by_type[e->task.status()];
  ++by_type[status];
  e->task.set_status(status);
}

std::vector<const TaskEntry*> TaskTable::Newest(const TaskFilter& f) const {
  std::vector<const TaskEntry*> out;
  for (auto it = by_sequence_.rbegin(); it != by_sequence_.rend() && static_cast<int>(out.size()) < f.limit; ++it) {
    const TaskEntry* e = it->second;
    if (f.status != pb::TASK_STATUS_UNSPECIFIED && e->task.status() != f.status) continue;
    if (!f.task_type.empty() && e->task.spec().task_type() != f.task_type) continue;
    if (!f.worker_device_id.empty() && e->task.worker_device_id() != f.worker_device_id) continue;
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> TaskTable::FinishedBefore(int64_t cutoff_ms, size_t limit) const {
  std::vector<std::string> out;
  for (const auto& [seq, e] : by_sequence_) {
    if (out.size() >= limit) break;
    const int64_t finished = e->task.finished_at_ms();
    if (finished > 0 && finished < cutoff_ms) out.push_back(e->task.task_id());
  }
  return out;
}

}  // namespace rc::coordinator
