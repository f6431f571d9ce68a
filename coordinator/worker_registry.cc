#include "coordinator/worker_registry.h"

#include <algorithm>

namespace rc::coordinator {

Liveness CheckLiveness(const WorkerEntry& w, int64_t now_ms, absl::Duration offline_after,
                       absl::Duration reconnect_grace) {
  if (w.link != nullptr) {
    return now_ms - w.last_heartbeat_ms > absl::ToInt64Milliseconds(offline_after) ? Liveness::kSilent
                                                                                     : Liveness::kFine;
  }
  if (!w.running.empty() && now_ms - w.disconnected_at_ms >= absl::ToInt64Milliseconds(reconnect_grace)) {
    return Liveness::kGraceExpired;
  }
  return Liveness::kFine;
}

WorkerEntry* WorkerRegistry::Find(const std::string& device_id) const {
  auto it = workers_.find(device_id);
  return it == workers_.end() ? nullptr : it->second.get();
}

WorkerEntry* WorkerRegistry::FindOrAdd(const std::string& device_id) {
  std::unique_ptr<WorkerEntry>& slot = workers_[device_id];
  if (slot == nullptr) slot = std::make_unique<WorkerEntry>();
  return slot.get();
}

std::vector<WorkerEntry*> WorkerRegistry::All() const {
  std::vector<WorkerEntry*> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) out.push_back(w.get());
  return out;
}

std::vector<WorkerView> WorkerRegistry::Views(bool free_only, std::vector<WorkerEntry*>* entries) const {
  std::vector<WorkerView> views;
  views.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    if (!w->accepting()) continue;
    int running = static_cast<int>(w->running.size());
    if (free_only && running >= w->caps.slots()) continue;
    views.push_back(WorkerView{&w->caps, running, true, w->last_task_type});
    if (entries != nullptr) entries->push_back(w.get());
  }
  return views;
}

std::vector<pb::Worker> WorkerRegistry::List(const std::string& device_id) const {
  std::vector<pb::Worker> out;
  for (const auto& [id, w] : workers_) {
    if (!device_id.empty() && id != device_id) continue;
    pb::Worker& v = out.emplace_back();
    *v.mutable_capabilities() = w->caps;
    v.set_status(w->status);
    v.set_running(static_cast<int32_t>(w->running.size()));
    v.set_load(w->caps.slots() > 0 ? static_cast<double>(w->running.size()) / w->caps.slots() : 0);
    v.set_last_heartbeat_ms(w->last_heartbeat_ms);
    v.set_connected_at_ms(w->connected_at_ms);
    v.set_load_average(w->load_average);
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
    s->set_busy_slots(s->busy_slots() + static_cast<int32_t>(w->running.size()));
  }
}

}  // namespace rc::coordinator
