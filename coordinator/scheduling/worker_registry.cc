#include "coordinator/scheduling/worker_registry.h"

#include <algorithm>

namespace rc::coordinator {

int64_t LastHeardMs(const WorkerEntry& w) {
  return w.heard != nullptr ? std::max(w.last_heartbeat_ms, w.heard->at_ms.load(std::memory_order_relaxed))
                            : w.last_heartbeat_ms;
}

Liveness CheckLiveness(const WorkerEntry& w, int64_t now_ms, absl::Duration offline_after,
                       absl::Duration reconnect_grace) {
  if (w.link != nullptr) {
    return now_ms - LastHeardMs(w) > absl::ToInt64Milliseconds(offline_after) ? Liveness::kSilent : Liveness::kFine;
  }
  if (!w.running.empty() && now_ms - w.disconnected_at_ms >= absl::ToInt64Milliseconds(reconnect_grace)) {
    return Liveness::kGraceExpired;
  }
  return Liveness::kFine;
}

int32_t WorkerEntry::DeepestWaiting() const {
  int32_t deepest = -1;
  for (const auto& [attempt, depth] : waiting) deepest = std::max(deepest, depth);
  return deepest;
}

WorkerEntry* WorkerRegistry::Touch(WorkerEntry* w) {
  if (!w->touched) {
    w->touched = true;
    touched_.push_back(w);
  }
  return w;
}

WorkerEntry* WorkerRegistry::Find(const std::string& device_id) {
  auto it = workers_.find(device_id);
  return it == workers_.end() ? nullptr : Touch(it->second.get());
}

WorkerEntry* WorkerRegistry::FindOrAdd(const std::string& device_id) {
  std::unique_ptr<WorkerEntry>& slot = workers_[device_id];
  if (slot == nullptr) {
    slot = std::make_unique<WorkerEntry>();
    slot->handle = index_.Add(&slot->caps);
    by_handle_.push_back(slot.get());
  }
  return Touch(slot.get());
}

std::vector<WorkerEntry*> WorkerRegistry::All() {
  std::vector<WorkerEntry*> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) out.push_back(Touch(w.get()));
  return out;
}

void WorkerRegistry::Sync() {
  for (WorkerEntry* w : touched_) {
    w->touched = false;
    if (w->indexed_epoch != w->epoch) {
      w->indexed_epoch = w->epoch;
      index_.CapabilitiesChanged(w->handle);
    }
    index_.Update(w->handle, static_cast<int>(w->running.size()), w->accepting(), w->last_task_type,
                  static_cast<int>(w->waiting.size()), w->DeepestWaiting());
  }
  touched_.clear();
}

void WorkerRegistry::IndexClass(ClassId cls, const ClassSpec& spec) {
  Sync();
  if (!index_.HasClass(cls)) index_.AddClass(cls, spec);
}

WorkerEntry* WorkerRegistry::Choose(ClassId cls, const ClassSpec& spec) {
  IndexClass(cls, spec);
  std::optional<PlacementIndex::Handle> h = index_.Choose(cls);
  return h ? Touch(by_handle_[*h]) : nullptr;  // the caller places a task there
}

bool WorkerRegistry::Runnable(ClassId cls, const ClassSpec& spec) {
  IndexClass(cls, spec);
  return index_.Runnable(cls);
}

bool WorkerRegistry::AnyFree() {
  Sync();
  return index_.free_workers() > 0;
}

std::vector<WorkerView> WorkerRegistry::Views() const {
  std::vector<WorkerView> views;
  views.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    if (!w->accepting()) continue;
    views.push_back(WorkerView{.capabilities = &w->caps,
                               .running = static_cast<int>(w->running.size()),
                               .accepting = true,
                               .last_task_type = w->last_task_type,
                               .waiting = static_cast<int>(w->waiting.size()),
                               .deepest_waiting = w->DeepestWaiting(),
                               .max_task_depth = max_task_depth_});
  }
  return views;
}

std::vector<pb::Worker> WorkerRegistry::List(const std::string& device_id) const {
  std::vector<pb::Worker> out;
  for (const auto& [id, w] : workers_) {
    if (!device_id.empty() && id != device_id) continue;
    pb::Worker& v = out.emplace_back();
    *v.mutable_capabilities() = w->caps;
    v.set_status(w->drained && w->status == pb::WORKER_STATUS_ONLINE ? pb::WORKER_STATUS_DRAINING : w->status);
    v.set_drained(w->drained);
    v.set_running(static_cast<int32_t>(w->running.size()));
    // The placement load: a waiting attempt lends its slot.
    v.set_load(w->caps.slots() > 0 ? static_cast<double>(w->busy()) / w->caps.slots() : 0);
    v.set_last_heartbeat_ms(LastHeardMs(*w));
    v.set_connected_at_ms(w->connected_at_ms);
    const bool stamped = w->heard != nullptr && w->heard->at_ms.load(std::memory_order_relaxed) > w->last_heartbeat_ms;
    v.set_load_average(stamped ? w->heard->load_average.load(std::memory_order_relaxed) : w->load_average);
  }
  std::sort(out.begin(), out.end(), [](const pb::Worker& a, const pb::Worker& b) {
    return a.capabilities().device_id() < b.capabilities().device_id();
  });
  return out;
}

void WorkerRegistry::AddStats(pb::Stats* s) const {
  for (const auto& [id, w] : workers_) {
    s->set_total_devices(s->total_devices() + 1);
    if (!w->accepting()) continue;
    s->set_online_devices(s->online_devices() + 1);
    s->set_total_slots(s->total_slots() + w->caps.slots());
    s->set_busy_slots(s->busy_slots() + w->busy());
  }
}

}  // namespace rc::coordinator
