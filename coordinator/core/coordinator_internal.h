#pragma once
// The effects of one Coordinator operation and Mutate, shared by the core's .cc files only.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "coordinator/core/coordinator.h"

namespace rc::coordinator {

// Everything an operation must do after releasing the state lock.
struct Effects {
  std::vector<std::pair<std::shared_ptr<WorkerLink>, pb::CoordinatorMessage>> sends;
  absl::flat_hash_map<WorkerLink*, size_t> send_index;
  std::vector<std::pair<std::shared_ptr<WorkerLink>, absl::Status>> closes;
  // Links to send what waited in them (WorkerLink::SendLater), after `sends`.
  std::vector<std::shared_ptr<WorkerLink>> flushes;
  std::vector<std::pair<std::shared_ptr<TaskSink>, pb::Task>> snapshots;
  // Per sink and task: its index in `snapshots` (one snapshot, the newest, per operation).
  absl::flat_hash_map<std::pair<const TaskSink*, std::string>, size_t> snapshot_index;
  // Snapshots of tasks whose payload is in the store only: the loader fills it in.
  std::vector<std::pair<std::shared_ptr<TaskSink>, pb::Task>> snapshots_to_load;
  // Per index into `sends`: ids of assignments whose payload the loader must read.
  absl::flat_hash_map<size_t, std::vector<std::string>> payloads_to_load;
  uint64_t operation = 0;  // the Mutate call these effects belong to
  std::vector<std::pair<std::shared_ptr<TaskSink>, absl::Status>> aborts;
  std::vector<TaskRecord> writes;
  // Ids of the tasks changed in this operation, in first-change order; each becomes one
  // write of its final state when the operation ends (see Mutate).
  std::vector<std::string> changed;
  std::vector<std::function<void()>> callbacks;
  // Only once `writes` (and every earlier write) are durable: answers that promise
  // something is stored (submit, cancel, result acknowledgements). Get the commit status
  // (OK when the operation wrote nothing); they run after every earlier operation's.
  std::vector<std::function<void(absl::Status)>> after_commit;
  // Like after_commit, but no client waits on them (acknowledgements of results, which
  // the worker keeps until then): the write may wait to share a later commit
  // (TaskStore::WriteUnhurried).
  std::vector<std::function<void(absl::Status)>> worker_acks;
  // Terminal snapshots held back until the attempt they end is durable (core_state.h).
  std::vector<HeldSnapshot> held;

  // The message being built for `link` in this operation (one per worker per operation,
  // so several assignments travel in one stream message).
  pb::CoordinatorMessage& MessageFor(const std::shared_ptr<WorkerLink>& link) {
    return sends[IndexFor(link)].second;
  }
  size_t IndexFor(const std::shared_ptr<WorkerLink>& link) {
    auto [it, inserted] = send_index.emplace(link.get(), sends.size());
    if (inserted) sends.emplace_back(link, pb::CoordinatorMessage());
    return it->second;
  }
};

template <typename Fn>
auto Coordinator::Mutate(Fn&& fn) {
  Effects fx;
  mu_.Lock();
  fx.operation = ++operation_;
  auto result = fn(fx);
  // Ends propagate through the task graph within the operation that caused them, so
  // the cascade is written (and answered) with it.
  PropagateEndsLocked(fx);
  TrimFinishedLocked(fx);
  for (const std::string& id : fx.changed) {
    if (TaskEntry* e = tasks_.Find(id)) fx.writes.push_back(RecordLocked(*e));  // erased since: nothing to write
  }
  if (!fx.writes.empty()) last_write_op_ = fx.operation;
  delivery_mu_.Lock();
  mu_.Unlock();
  const uint64_t ticket = Deliver(fx);
  delivery_mu_.Unlock();
  for (auto& cb : fx.callbacks) cb();
  // A store that answered inline (MemoryTaskStore) left the completion to us: it may
  // call back into the Coordinator, so it runs only now, with no lock held. A store
  // that posts its commits has them run on the completion thread, never here.
  if (ticket != 0) completions_.Delivered(ticket);
  return result;
}

}  // namespace rc::coordinator
