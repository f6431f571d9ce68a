// Coordinator: client reads (GetTask, ListTasks, Watch) over memory and the store, and
// the bookkeeping that lets finished tasks and payloads leave memory safely.
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

absl::StatusOr<std::optional<pb::Task>> Coordinator::StoredFinished(const std::string& task_id) const {
  absl::StatusOr<std::optional<pb::Task>> stored = store_->Get(task_id);
  if (!stored.ok()) return StoreError(stored.status());
  // Only finished tasks leave memory; any other record here is one the coordinator
  // dropped after its write failed (or is creating right now): not a task yet.
  if (stored->has_value() && !IsTerminal((*stored)->status())) return std::nullopt;
  return stored;
}

absl::StatusOr<pb::Task> Coordinator::GetTask(const std::string& task_id) const {
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

absl::StatusOr<std::vector<pb::Task>> Coordinator::ListTasks(const TaskFilter& f) const {
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

absl::StatusOr<uint64_t> Coordinator::Watch(const std::string& task_id, std::shared_ptr<TaskSink> sink,
                                            const TaskAccess& allow) {
  return WatchAll({task_id}, std::move(sink), allow)[0];
}

std::vector<absl::StatusOr<uint64_t>> Coordinator::WatchAll(const std::vector<std::string>& task_ids,
                                                            std::shared_ptr<TaskSink> sink, const TaskAccess& allow) {
  std::vector<std::pair<size_t, uint64_t>> elsewhere;  // not in memory: (index, watch id)
  std::vector<absl::StatusOr<uint64_t>> out = Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<absl::StatusOr<uint64_t>> out;
    out.reserve(task_ids.size());
    for (const std::string& task_id : task_ids) {
      if (shut_down_) {
        out.push_back(absl::UnavailableError("coordinator is shutting down"));
        continue;
      }
      TaskEntry* e = tasks_.Find(task_id);
      if (e == nullptr) {
        elsewhere.emplace_back(out.size(), next_watch_++);
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
  });
  // Finished and evicted: the stored record is final, so it is the only snapshot.
  for (const auto& [i, watch_id] : elsewhere) {
    absl::StatusOr<std::optional<pb::Task>> stored = StoredFinished(task_ids[i]);
    if (!stored.ok()) {
      out[i] = stored.status();
      continue;
    }
    if (!stored->has_value()) continue;  // NOT_FOUND already
    if (absl::Status allowed = allow ? allow(**stored) : absl::OkStatus(); !allowed.ok()) {
      out[i] = std::move(allowed);
      continue;
    }
    sink->OnTask(**stored);
    out[i] = watch_id;
  }
  return out;
}

size_t Coordinator::tasks_in_memory() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

int64_t Coordinator::payload_bytes_in_memory() const {
  absl::MutexLock lock(&mu_);
  return payload_bytes_in_ram_;
}

void Coordinator::TrimFinishedLocked(Effects& fx) {
  const size_t keep = static_cast<size_t>(std::max<int64_t>(0, options_.finished_cache_tasks));
  if (tasks_.finished_in_memory() <= keep) return;
  absl::MutexLock lock(&durable_mu_);
  while (tasks_.finished_in_memory() > keep) {
    TaskEntry* e = tasks_.OldestFinished();
    if (e == nullptr || e->written_in > durable_op_) break;  // its final record is not committed yet
    if (failed_ops_.contains(e->written_in)) {
      // Its last write failed: write it again; it leaves memory once that commits.
      e->written_in = fx.operation;
      fx.changed.push_back(e->task.task_id());
      break;
    }
    if (e->payload_in_ram) payload_bytes_in_ram_ -= e->payload_bytes;
    if (!e->task.spec().idempotency_key().empty()) ++keyed_evictions_;
    const std::string id = e->task.task_id();
    tasks_.Evict(id);
  }
}

void Coordinator::Committed(uint64_t operation, const absl::Status& s) {
  absl::MutexLock lock(&durable_mu_);
  durable_op_ = std::max(durable_op_, operation);
  if (!s.ok()) failed_ops_.insert(operation);
}

void Coordinator::PayloadsUnread(std::vector<PayloadLoader::Unread> unread) {
  Mutate([&](Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const PayloadLoader::Unread& u : unread) {
      spdlog::error("task {} attempt {} was not sent: {}", u.task_id, u.attempt, u.why);
      TaskEntry* e = tasks_.Find(u.task_id);
      if (e == nullptr || e->task.attempts() != u.attempt || e->task.status() != pb::TASK_STATUS_ASSIGNED) continue;
      if (WorkerEntry* w = workers_.Find(e->task.worker_device_id())) ReleaseAttemptLocked(w, u.task_id, u.attempt);
      RetryOrFailLocked(e, absl::StrCat("not sent to worker ", e->task.worker_device_id(), ": ", u.why), fx);
    }
    DispatchLocked(fx);
    return 0;
  });
}

}  // namespace rc::coordinator
