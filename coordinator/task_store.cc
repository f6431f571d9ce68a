#include "coordinator/task_store.h"

namespace rc::coordinator {

void MemoryTaskStore::Write(std::vector<pb::Task> tasks, std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    for (pb::Task& t : tasks) {
      std::string id = t.task_id();
      tasks_[id] = std::move(t);
    }
  }
  if (done) done(absl::OkStatus());
}

void MemoryTaskStore::Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : task_ids) tasks_.erase(id);
  }
  if (done) done(absl::OkStatus());
}

absl::StatusOr<std::vector<pb::Task>> MemoryTaskStore::LoadAll() {
  absl::MutexLock lock(&mu_);
  std::vector<pb::Task> out;
  out.reserve(tasks_.size());
  for (const auto& [id, t] : tasks_) out.push_back(t);
  return out;
}

}  // namespace rc::coordinator
