#include "coordinator/core/task_table.h"

#include "absl/strings/str_cat.h"
#include "common/task_names.h"

namespace rc::coordinator {
namespace {

std::string IdempotencyIndexKey(const std::string& owner, const std::string& key, const std::string& parent) {
  // Always prefixed (owner names hold neither \x1f nor \x1e, task ids hold no \x1f), so
  // no key of one owner equals another's, and a child's (owner \x1e parent \x1f key)
  // never equals a top-level one's (owner \x1f key) nor one under another parent.
  if (parent.empty()) return absl::StrCat(owner, "\x1f", key);
  return absl::StrCat(owner, "\x1e", parent, "\x1f", key);
}

}  // namespace

TaskEntry* TaskTable::Find(absl::string_view task_id) const {
  auto it = by_id_.find(task_id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

TaskEntry* TaskTable::FindByIdempotencyKey(const std::string& owner, const std::string& key,
                                           const std::string& parent_task_id) const {
  auto it = by_idempotency_key_.find(IdempotencyIndexKey(owner, key, parent_task_id));
  return it == by_idempotency_key_.end() ? nullptr : Find(it->second);
}

TaskEntry* TaskTable::Insert(std::unique_ptr<TaskEntry> entry) {
  const pb::Task& t = entry->task;
  ++counts_[t.status()];
  ++by_type_[t.spec().task_type()][t.status()];
  if (IsTerminal(t.status())) {
    finished_order_.push_back(t.task_id());
    ++finished_in_memory_;
  } else {
    HoldOwner(*entry);
  }
  by_sequence_[entry->key.seq] = entry.get();
  if (!t.spec().idempotency_key().empty()) {
    by_idempotency_key_[IdempotencyIndexKey(t.owner(), t.spec().idempotency_key(), t.parent_task_id())] = t.task_id();
  }
  TaskEntry* raw = entry.get();
  by_id_.emplace(raw->task.task_id(), std::move(entry));
  return raw;
}

void TaskTable::Unlink(absl::string_view task_id) {
  auto it = by_id_.find(task_id);
  if (it == by_id_.end()) return;
  const pb::Task& t = it->second->task;
  if (IsTerminal(t.status())) {
    --finished_in_memory_;
  } else {
    ReleaseOwner(*it->second);
  }
  if (!t.spec().idempotency_key().empty()) {
    by_idempotency_key_.erase(IdempotencyIndexKey(t.owner(), t.spec().idempotency_key(), t.parent_task_id()));
  }
  by_sequence_.erase(it->second->key.seq);
  by_id_.erase(it);
}

void TaskTable::Erase(const std::string& task_id) {
  TaskEntry* e = Find(task_id);
  if (e == nullptr) return;
  CountStored(e->task.spec().task_type(), e->task.status(), -1);
  Unlink(task_id);
}

void TaskTable::Evict(const std::string& task_id) {
  TaskEntry* e = Find(task_id);
  if (e != nullptr && IsTerminal(e->task.status())) Unlink(task_id);
}

void TaskTable::CountStored(const std::string& task_type, pb::TaskStatus status, int64_t n) {
  counts_[status] += n;
  by_type_[task_type][status] += n;
}

TaskEntry* TaskTable::OldestFinished() {
  while (!finished_order_.empty()) {
    TaskEntry* e = Find(finished_order_.front());
    if (e != nullptr && IsTerminal(e->task.status())) return e;
    finished_order_.pop_front();  // erased or evicted since
  }
  return nullptr;
}

void TaskTable::SetStatus(TaskEntry* e, pb::TaskStatus status) {
  --counts_[e->task.status()];
  ++counts_[status];
  Counts& by_type = by_type_[e->task.spec().task_type()];
  --by_type[e->task.status()];
  ++by_type[status];
  const bool was_terminal = IsTerminal(e->task.status());
  if (!was_terminal && IsTerminal(status)) {
    ReleaseOwner(*e);
    finished_order_.push_back(e->task.task_id());
    ++finished_in_memory_;
  }
  if (was_terminal && !IsTerminal(status)) {
    HoldOwner(*e);
    --finished_in_memory_;
  }
  e->task.set_status(status);
}

void TaskTable::HoldOwner(const TaskEntry& e) {
  Unfinished& u = unfinished_by_owner_[e.task.owner()];
  ++u.tasks;
  u.bytes += e.payload_bytes;
}

void TaskTable::ReleaseOwner(const TaskEntry& e) {
  auto it = unfinished_by_owner_.find(e.task.owner());
  if (it == unfinished_by_owner_.end()) return;
  it->second.bytes -= e.payload_bytes;
  if (--it->second.tasks <= 0) unfinished_by_owner_.erase(it);
}

std::vector<const TaskEntry*> TaskTable::Newest(const TaskFilter& f) const {
  std::vector<const TaskEntry*> out;
  for (auto it = by_sequence_.rbegin(); it != by_sequence_.rend() && static_cast<int>(out.size()) < f.limit; ++it) {
    if (Matches(f, it->second->task)) out.push_back(it->second);
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
