#include "coordinator/core/task_reads.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

absl::Status NotFound(const std::string& task_id) {
  return absl::NotFoundError(absl::StrCat("no task with id '", task_id, "'"));
}

absl::Status StoreError(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat("task store: ", s.message()));
}

}  // namespace

absl::StatusOr<std::optional<pb::Task>> TaskReads::StoredFinished(const std::string& task_id) const {
  absl::StatusOr<std::optional<pb::Task>> stored = store_->Get(task_id);
  if (!stored.ok()) return StoreError(stored.status());
  // Only finished tasks leave memory; any other record here is one the coordinator
  // dropped after its write failed (or is creating right now): not a task yet.
  if (stored->has_value() && !IsTerminal((*stored)->status())) return std::nullopt;
  if (stored->has_value()) (*stored)->clear_attempt_token_sha256();  // internal, as in SnapshotLocked
  return stored;
}

absl::StatusOr<pb::Task> TaskReads::GetTask(const std::string& task_id) const {
  std::optional<pb::Task> snapshot;
  bool fill = false;
  {
    absl::MutexLock lock(&mu_);
    if (TaskEntry* e = tasks_.Find(task_id)) {
      snapshot = SnapshotLocked(*e);
      fill = NeedsPayload(*e);
    }
  }
  if (snapshot.has_value()) {
    if (fill) {
      auto payloads = store_->ReadPayloads({task_id});
      if (!payloads.ok()) return StoreError(payloads.status());
      auto it = payloads->find(task_id);
      if (it != payloads->end()) snapshot->mutable_spec()->set_payload(it->second);
    }
    return *std::move(snapshot);
  }
  absl::StatusOr<std::optional<pb::Task>> stored = StoredFinished(task_id);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return NotFound(task_id);
  return **std::move(stored);
}

absl::StatusOr<std::vector<pb::Task>> TaskReads::ListTasks(const TaskFilter& f) const {
  if (f.limit < 1 || f.limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit: must be 1..10000, got ", f.limit));
  }
  std::vector<pb::Task> out;
  std::vector<std::string> fill;
  {
    absl::MutexLock lock(&mu_);
    for (const TaskEntry* e : tasks_.Newest(f)) {
      out.push_back(SnapshotLocked(*e));
      if (NeedsPayload(*e)) fill.push_back(e->task.task_id());
    }
  }
  if (!fill.empty()) {
    auto payloads = store_->ReadPayloads(fill);
    if (!payloads.ok()) return StoreError(payloads.status());
    for (pb::Task& t : out) {
      auto it = payloads->find(t.task_id());
      if (it != payloads->end() && t.spec().payload().empty()) t.mutable_spec()->set_payload(it->second);
    }
  }
  if (f.status != pb::TASK_STATUS_UNSPECIFIED && !IsTerminal(f.status)) return out;  // all in memory
  // Finished tasks evicted from memory: merge by submission order. A task may be in both
  // (cached, or it finished and left memory since the snapshot above): the later revision wins.
  absl::StatusOr<std::vector<pb::Task>> stored = store_->ListFinished(f);
  if (!stored.ok()) return StoreError(stored.status());
  absl::flat_hash_map<std::string, size_t> at;
  for (size_t i = 0; i < out.size(); ++i) at[out[i].task_id()] = i;
  for (pb::Task& t : *stored) {
    auto it = at.find(t.task_id());
    if (it == at.end()) {
      out.push_back(std::move(t));
    } else if (t.revision() > out[it->second].revision()) {
      out[it->second] = std::move(t);
    }
  }
  std::sort(out.begin(), out.end(), [](const pb::Task& a, const pb::Task& b) { return a.sequence() > b.sequence(); });
  if (out.size() > static_cast<size_t>(f.limit)) out.resize(f.limit);
  return out;
}

std::vector<absl::StatusOr<uint64_t>> TaskReads::WatchLocked(const std::vector<std::string>& task_ids,
                                                             const std::shared_ptr<TaskSink>& sink,
                                                             const TaskAccess& allow,
                                                             std::vector<std::pair<size_t, uint64_t>>* elsewhere,
                                                             Effects& fx) {
  std::vector<absl::StatusOr<uint64_t>> out;
  out.reserve(task_ids.size());
  for (const std::string& task_id : task_ids) {
    if (shut_down_) {
      out.push_back(absl::UnavailableError("coordinator is shutting down"));
      continue;
    }
    TaskEntry* e = tasks_.Find(task_id);
    if (e == nullptr) {
      elsewhere->emplace_back(out.size(), next_watch_++);
      out.push_back(NotFound(task_id));  // until the store answers
      continue;
    }
    if (absl::Status allowed = allow ? allow(e->task) : absl::OkStatus(); !allowed.ok()) {
      out.push_back(std::move(allowed));
      continue;
    }
    const bool terminal = IsTerminal(e->task.status());
    if (terminal || !sink->TerminalOnly()) NotifyLocked(*e, sink, SnapshotLocked(*e), fx);
    uint64_t id = next_watch_++;
    if (!terminal) e->watchers.emplace_back(id, sink);
    out.push_back(id);
  }
  return out;
}

void TaskReads::WatchStored(const std::vector<std::string>& task_ids, const std::shared_ptr<TaskSink>& sink,
                            const TaskAccess& allow, const std::vector<std::pair<size_t, uint64_t>>& elsewhere,
                            std::vector<absl::StatusOr<uint64_t>>* out) const {
  // Finished and evicted: the stored record is final, so it is the only snapshot.
  for (const auto& [i, watch_id] : elsewhere) {
    absl::StatusOr<std::optional<pb::Task>> stored = StoredFinished(task_ids[i]);
    if (!stored.ok()) {
      (*out)[i] = stored.status();
      continue;
    }
    if (!stored->has_value()) continue;  // NOT_FOUND already
    if (absl::Status allowed = allow ? allow(**stored) : absl::OkStatus(); !allowed.ok()) {
      (*out)[i] = std::move(allowed);
      continue;
    }
    sink->OnTask(**stored);
    (*out)[i] = watch_id;
  }
}

void TaskReads::Unwatch(const std::string& task_id, uint64_t watch_id) {
  absl::MutexLock lock(&mu_);
  TaskEntry* e = tasks_.Find(task_id);
  if (e == nullptr) return;
  std::erase_if(e->watchers, [&](const auto& w) { return w.first == watch_id; });
}

std::map<std::string, std::map<std::string, int64_t>> TaskReads::CountsByType() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (const auto& [type, counts] : tasks_.counts_by_type()) {
    for (int st = pb::TASK_STATUS_PENDING; st <= pb::TASK_STATUS_TIMEOUT; ++st) {
      if (counts[st] != 0) out[type][std::string(StatusName(static_cast<pb::TaskStatus>(st)))] = counts[st];
    }
  }
  return out;
}

std::vector<pb::Worker> TaskReads::ListWorkers(const std::string& device_id) const {
  absl::MutexLock lock(&mu_);
  return workers_.List(device_id);
}

pb::Stats TaskReads::Stats() const {
  absl::MutexLock lock(&mu_);
  pb::Stats s;
  workers_.AddStats(&s);
  for (int st = pb::TASK_STATUS_PENDING; st <= pb::TASK_STATUS_TIMEOUT; ++st) {
    auto status = static_cast<pb::TaskStatus>(st);
    (*s.mutable_tasks())[std::string(StatusName(status))] = tasks_.count(status);
  }
  for (int p = pb::PRIORITY_LOW; p <= pb::PRIORITY_URGENT; ++p) {
    (*s.mutable_queued_by_priority())[std::string(PriorityName(static_cast<pb::Priority>(p)))] =
        queue_.count_by_priority(p);
  }
  s.set_tasks_scheduled(tasks_scheduled_);
  s.set_tasks_succeeded(tasks_.count(pb::TASK_STATUS_SUCCESS));
  s.set_tasks_failed(tasks_.count(pb::TASK_STATUS_FAILED));
  s.set_uptime_seconds((clock_->NowMs() - started_at_ms_) / 1000.0);
  return s;
}

size_t TaskReads::tasks_in_memory() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

int64_t TaskReads::payload_bytes_in_memory() const {
  absl::MutexLock lock(&mu_);
  return payload_bytes_in_ram_;
}

}  // namespace rc::coordinator
