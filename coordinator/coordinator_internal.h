#pragma once
// Private state records of Coordinator, shared by its .cc files only.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "coordinator/coordinator.h"

namespace rc::coordinator {

struct Coordinator::TaskEntry {
  pb::Task task;
  ClassId cls = 0;
  QueueKey key;
  std::vector<std::pair<uint64_t, std::shared_ptr<TaskSink>>> watchers;
};

struct Coordinator::WorkerEntry {
  pb::Capabilities caps;
  pb::WorkerStatus status = pb::WORKER_STATUS_ONLINE;
  uint64_t epoch = 0;
  std::shared_ptr<WorkerLink> link;  // null while disconnected
  // Attempts reserved on this worker, one slot each; a slot is freed only when the
  // worker reports that attempt finished or the worker is lost. Keyed by attempt, not
  // by task: a worker may still be stopping attempt 1 when attempt 2 lands there.
  absl::flat_hash_set<std::pair<std::string, int32_t>> running;
  std::string last_task_type;
  int64_t last_heartbeat_ms = 0;
  int64_t connected_at_ms = 0;
  int64_t disconnected_at_ms = 0;
  double load_average = 0;
};

// Everything an operation must do after releasing the state lock.
struct Coordinator::Effects {
  std::vector<std::pair<std::shared_ptr<WorkerLink>, pb::CoordinatorMessage>> sends;
  absl::flat_hash_map<WorkerLink*, size_t> send_index;
  std::vector<std::pair<std::shared_ptr<WorkerLink>, absl::Status>> closes;
  std::vector<std::pair<std::shared_ptr<TaskSink>, pb::Task>> snapshots;
  std::vector<std::pair<std::shared_ptr<TaskSink>, absl::Status>> aborts;
  std::vector<pb::Task> writes;
  std::vector<std::function<void()>> callbacks;

  // The message being built for `link` in this operation (one per worker per operation,
  // so several assignments travel in one stream message).
  pb::CoordinatorMessage& MessageFor(const std::shared_ptr<WorkerLink>& link) {
    auto [it, inserted] = send_index.emplace(link.get(), sends.size());
    if (inserted) sends.emplace_back(link, pb::CoordinatorMessage());
    return sends[it->second].second;
  }
};

template <typename Fn>
auto Coordinator::Mutate(Fn&& fn) {
  Effects fx;
  mu_.Lock();
  auto result = fn(fx);
  delivery_mu_.Lock();
  mu_.Unlock();
  Deliver(fx);
  delivery_mu_.Unlock();
  for (auto& cb : fx.callbacks) cb();
  return result;
}

}  // namespace rc::coordinator
