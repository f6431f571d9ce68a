#include "coordinator/store/task_store.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"

namespace rc::coordinator {

bool Matches(const TaskFilter& f, const pb::Task& t) {
  if (f.status != pb::TASK_STATUS_UNSPECIFIED && t.status() != f.status) return false;
  if (f.owner.has_value() && t.owner() != *f.owner) return false;
  if (!f.task_type.empty() && t.spec().task_type() != f.task_type) return false;
  if (!f.worker_device_id.empty() && t.worker_device_id() != f.worker_device_id) return false;
  if (!f.parent_task_id.empty() && t.parent_task_id() != f.parent_task_id) return false;
  return true;
}

namespace {

// The reads over any collection of records (the base class and MemoryTaskStore); `each`
// calls its argument with every record.
template <typename ForEach>
RecoveryData Recovery(ForEach each, int64_t budget) {
  RecoveryData out;
  std::map<std::pair<std::string, pb::TaskStatus>, int64_t> counts;
  each([&](const pb::Task& t) {
    out.max_sequence = std::max(out.max_sequence, t.sequence());
    out.max_task_id = std::max(out.max_task_id, t.task_id());
    if (IsTerminal(t.status())) {
      ++counts[{t.spec().task_type(), t.status()}];
    } else {
      out.unfinished.push_back(RecoveredTask{t, static_cast<int64_t>(t.spec().payload().size()), true});
    }
  });
  std::sort(out.unfinished.begin(), out.unfinished.end(),
            [](const RecoveredTask& a, const RecoveredTask& b) { return a.task.sequence() < b.task.sequence(); });
  int64_t loaded = 0;
  for (RecoveredTask& r : out.unfinished) {
    if (loaded + r.payload_bytes > budget) {
      std::string().swap(*r.task.mutable_spec()->mutable_payload());
      r.payload_loaded = false;
    } else {
      loaded += r.payload_bytes;
    }
  }
  for (auto& [key, n] : counts) out.finished_counts.emplace_back(key.first, key.second, n);
  return out;
}

template <typename ForEach>
std::vector<pb::Task> Finished(ForEach each, const TaskFilter& f) {
  std::vector<const pb::Task*> found;
  each([&](const pb::Task& t) {
    if (IsTerminal(t.status()) && Matches(f, t)) found.push_back(&t);
  });
  const size_t n = std::min(found.size(), static_cast<size_t>(std::max(f.limit, 0)));
  std::partial_sort(found.begin(), found.begin() + n, found.end(),
                    [](const pb::Task* a, const pb::Task* b) { return a->sequence() > b->sequence(); });
  std::vector<pb::Task> out;
  for (size_t i = 0; i < n; ++i) out.push_back(*found[i]);
  return out;
}

template <typename ForEach>
std::vector<FinishedRef> Before(ForEach each, int64_t cutoff_ms, size_t limit) {
  std::vector<std::pair<int64_t, FinishedRef>> found;
  each([&](const pb::Task& t) {
    if (t.finished_at_ms() > 0 && t.finished_at_ms() < cutoff_ms) {
      found.emplace_back(t.finished_at_ms(), FinishedRef{t.task_id(), t.spec().task_type(), t.status()});
    }
  });
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<FinishedRef> out;
  for (size_t i = 0; i < found.size() && i < limit; ++i) out.push_back(std::move(found[i].second));
  return out;
}

template <typename ForEach>
std::optional<std::pair<std::string, pb::TaskStatus>> ByKey(ForEach each, const std::string& owner,
                                                            const std::string& key, const std::string& parent) {
  std::optional<std::pair<std::string, pb::TaskStatus>> out;
  uint64_t first = 0;
  each([&](const pb::Task& t) {
    if (t.owner() != owner || t.spec().idempotency_key() != key || t.parent_task_id() != parent) return;
    if (!out.has_value() || t.sequence() < first) {  // the first task with the key, as the SQLite store answers
      out.emplace(t.task_id(), t.status());
      first = t.sequence();
    }
  });
  return out;
}

}  // namespace

// ---- TaskStore: reads by scanning LoadAll ----

#define RC_SCAN_ALL                                                \
  absl::StatusOr<std::vector<pb::Task>> all = LoadAll();           \
  if (!all.ok()) return all.status();                              \
  auto each = [&](auto fn) {                                       \
    for (const pb::Task& t : *all) fn(t);                          \
  }

absl::StatusOr<RecoveryData> TaskStore::LoadForRecovery(int64_t payload_budget_bytes) {
  RC_SCAN_ALL;
  return Recovery(each, payload_budget_bytes);
}

absl::StatusOr<std::optional<pb::Task>> TaskStore::Get(const std::string& task_id) {
  RC_SCAN_ALL;
  std::optional<pb::Task> out;
  each([&](const pb::Task& t) {
    if (t.task_id() == task_id) out = t;
  });
  return out;
}

absl::StatusOr<std::vector<pb::Task>> TaskStore::ListFinished(const TaskFilter& filter) {
  RC_SCAN_ALL;
  return Finished(each, filter);
}

absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> TaskStore::FindByIdempotencyKey(
    const std::string& owner, const std::string& key, const std::string& parent_task_id) {
  RC_SCAN_ALL;
  return ByKey(each, owner, key, parent_task_id);
}

absl::StatusOr<std::vector<FinishedRef>> TaskStore::FinishedBefore(int64_t cutoff_ms, size_t limit) {
  RC_SCAN_ALL;
  return Before(each, cutoff_ms, limit);
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> TaskStore::ReadPayloads(
    const std::vector<std::string>& task_ids) {
  RC_SCAN_ALL;
  absl::flat_hash_map<std::string, std::string> out;
  absl::flat_hash_map<std::string, bool> wanted;
  for (const std::string& id : task_ids) wanted[id] = true;
  each([&](const pb::Task& t) {
    if (wanted.contains(t.task_id())) out[t.task_id()] = t.spec().payload();
  });
  return out;
}

#undef RC_SCAN_ALL

// ---- TaskRecord ----

TaskRecord ToRecord(pb::Task& t) {
  TaskRecord r;
  r.task_id = t.task_id();
  r.status = t.status();
  r.finished_at_ms = t.finished_at_ms();
  r.sequence = t.sequence();
  r.owner = t.owner();
  r.task_type = t.spec().task_type();
  r.worker_device_id = t.worker_device_id();
  r.idempotency_key = t.spec().idempotency_key();
  r.parent_task_id = t.parent_task_id();
  if (t.has_spec() && !t.spec().payload().empty()) {
    r.payload = t.spec().payload();
    // Out of the task while the rest is serialized, then back.
    std::string held;
    std::string* payload = t.mutable_spec()->mutable_payload();
    payload->swap(held);
    t.SerializeToString(&r.record);
    payload->swap(held);
  } else {
    t.SerializeToString(&r.record);
  }
  return r;
}

std::vector<TaskRecord> ToRecords(std::vector<pb::Task> tasks) {
  std::vector<TaskRecord> out;
  out.reserve(tasks.size());
  for (pb::Task& t : tasks) out.push_back(ToRecord(t));
  return out;
}

absl::StatusOr<pb::Task> ParseRecord(const TaskRecord& r) {
  pb::Task t;
  if (!t.ParseFromString(r.record)) {
    return absl::DataLossError(absl::StrCat("the record of task ", r.task_id, " does not parse"));
  }
  if (!r.payload.empty()) t.mutable_spec()->set_payload(r.payload);
  return t;
}

// ---- MemoryTaskStore ----

void MemoryTaskStore::Write(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) {
  std::vector<pb::Task> tasks;
  tasks.reserve(records.size());
  for (const TaskRecord& r : records) {
    absl::StatusOr<pb::Task> t = ParseRecord(r);
    if (!t.ok()) {
      if (done) done(t.status());
      return;
    }
    tasks.push_back(*std::move(t));
  }
  {
    absl::MutexLock lock(&mu_);
    for (pb::Task& t : tasks) {
      std::string id = t.task_id();
      auto it = tasks_.find(id);
      if (it != tasks_.end() && t.spec().payload().empty()) {
        // A payload is written once; later records may leave it out (see TaskStore::Write).
        t.mutable_spec()->set_payload(std::move(*it->second.mutable_spec()->mutable_payload()));
      }
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

// Visits every stored task; built from a reference taken under the lock (clang's
// thread-safety analysis does not follow a lambda's captures of guarded members).
struct TaskVisitor {
  const absl::flat_hash_map<std::string, pb::Task>& tasks;
  template <typename Fn>
  void operator()(Fn fn) const {
    for (const auto& [id, t] : tasks) fn(t);
  }
};

#define RC_SCAN_MEMORY          \
  absl::MutexLock lock(&mu_);   \
  const TaskVisitor each{tasks_}

absl::StatusOr<RecoveryData> MemoryTaskStore::LoadForRecovery(int64_t payload_budget_bytes) {
  RC_SCAN_MEMORY;
  return Recovery(each, payload_budget_bytes);
}

absl::StatusOr<std::vector<pb::Task>> MemoryTaskStore::ListFinished(const TaskFilter& filter) {
  RC_SCAN_MEMORY;
  return Finished(each, filter);
}

absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> MemoryTaskStore::FindByIdempotencyKey(
    const std::string& owner, const std::string& key, const std::string& parent_task_id) {
  RC_SCAN_MEMORY;
  return ByKey(each, owner, key, parent_task_id);
}

absl::StatusOr<std::vector<FinishedRef>> MemoryTaskStore::FinishedBefore(int64_t cutoff_ms, size_t limit) {
  RC_SCAN_MEMORY;
  return Before(each, cutoff_ms, limit);
}

#undef RC_SCAN_MEMORY

absl::StatusOr<std::optional<pb::Task>> MemoryTaskStore::Get(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> MemoryTaskStore::ReadPayloads(
    const std::vector<std::string>& task_ids) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, std::string> out;
  for (const std::string& id : task_ids) {
    auto it = tasks_.find(id);
    if (it != tasks_.end()) out[id] = it->second.spec().payload();
  }
  return out;
}

}  // namespace rc::coordinator
