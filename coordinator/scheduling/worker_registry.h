#pragma once
// The workers the coordinator has seen, connected or not, with what each holds, and a
// PlacementIndex over them for dispatch. Liveness is decided by a pure function of one
// worker's record and the time. Not thread-safe: the Coordinator guards it with its mutex.
//
// The index is kept in step without the callers' help: every record handed out mutable
// (Find, FindOrAdd, All, Choose) is assumed changed and re-read into the index before
// the next decision (for a heartbeat, a lookup that finds nothing changed).
// Capabilities change only when a worker (re)registers, which always starts a new epoch,
// so the epoch tells when to re-read them.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
// WorkerLink (core/links.h) is only held here, never called: scheduling does not depend on core.
#include "coordinator/scheduling/placement_index.h"
#include "coordinator/scheduling/scheduling_policy.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

class WorkerLink;

// When a connection's worker was last heard from, and its load: stamped by the stream's
// reader for every message without the coordinator's lock, so that heartbeats (10k/s at
// 10k workers) never wait behind dispatch and cost no state change. One per connection.
struct Heard {
  std::atomic<int64_t> at_ms{0};
  std::atomic<double> load_average{0};
};

struct WorkerEntry {
  pb::Capabilities caps;
  pb::WorkerStatus status = pb::WORKER_STATUS_ONLINE;
  uint64_t epoch = 0;                // of the current (or last) connection
  std::shared_ptr<WorkerLink> link;  // null while disconnected
  // Attempts reserved on this worker, one slot each; a slot is freed only when the
  // worker reports that attempt finished or the worker is lost. Keyed by attempt, not
  // by task: a worker may still be stopping attempt 1 when attempt 2 lands there.
  absl::flat_hash_set<std::pair<std::string, int32_t>> running;
  // Of `running` (always a subset: Forget), the attempts waiting on their subtree (their
  // slots lent: WorkerState), each with its task's depth, as the worker last reported them
  // (WorkerMessage.waiting).
  absl::flat_hash_map<std::pair<std::string, int32_t>, int32_t> waiting;
  std::string last_task_type;
  int64_t last_heartbeat_ms = 0;     // as of the last message handled under the lock
  std::shared_ptr<Heard> heard;      // of the current connection (see LastHeardMs)
  int64_t connected_at_ms = 0;
  int64_t disconnected_at_ms = 0;
  double load_average = 0;
  bool drained = false;  // by an admin (DrainWorker): kept across reconnects
  // The registry's bookkeeping for the placement index.
  PlacementIndex::Handle handle = 0;
  uint64_t indexed_epoch = UINT64_MAX;  // the epoch whose capabilities the index holds
  bool touched = false;                 // handed out since the index last read it

  bool accepting() const { return link != nullptr && status == pb::WORKER_STATUS_ONLINE && !drained; }
  // The attempt ended or left this worker: its slot, and what it lent, are free.
  void Forget(const std::pair<std::string, int32_t>& attempt) {
    running.erase(attempt);
    waiting.erase(attempt);
  }
  void ForgetAll() {
    running.clear();
    waiting.clear();
  }
  // The greatest depth among the waiting attempts, -1 when none waits.
  int32_t DeepestWaiting() const;
  // Slots in use: attempts running and not waiting.
  int busy() const { return static_cast<int>(running.size()) - static_cast<int>(waiting.size()); }
};

// The later of last_heartbeat_ms and what the connection's reader stamped.
int64_t LastHeardMs(const WorkerEntry& w);

enum class Liveness {
  kFine,
  kSilent,        // connected, but no message for longer than offline_after
  kGraceExpired,  // disconnected longer than reconnect_grace while holding attempts
};
Liveness CheckLiveness(const WorkerEntry& w, int64_t now_ms, absl::Duration offline_after,
                       absl::Duration reconnect_grace);

class WorkerRegistry {
 public:
  // `max_task_depth`: waiting attempts allowed per slot (CoordinatorOptions; 0: no lending).
  explicit WorkerRegistry(int32_t max_task_depth = 0) : max_task_depth_(max_task_depth), index_(max_task_depth) {}

  WorkerEntry* Find(const std::string& device_id);
  WorkerEntry* FindOrAdd(const std::string& device_id);
  std::vector<WorkerEntry*> All();

  // ChooseWorker's pick for a task of class `cls` among all workers, or null.
  WorkerEntry* Choose(ClassId cls, const ClassSpec& spec);
  // Whether some accepting worker can run class `cls`, busy or not.
  bool Runnable(ClassId cls, const ClassSpec& spec);
  // Whether some accepting worker has a free slot (its own, or lent for some depth).
  bool AnyFree();

  // Accepting workers as the policy sees them.
  std::vector<WorkerView> Views() const;
  // Every worker (or the one with `device_id`), by device id.
  std::vector<pb::Worker> List(const std::string& device_id) const;
  // Device and slot counts into `stats` (busy slots: attempts running and not waiting).
  void AddStats(pb::Stats* stats) const;

 private:
  WorkerEntry* Touch(WorkerEntry* w);
  // Re-reads every touched record into the index.
  void Sync();
  void IndexClass(ClassId cls, const ClassSpec& spec);

  const int32_t max_task_depth_;
  absl::flat_hash_map<std::string, std::unique_ptr<WorkerEntry>> workers_;
  std::vector<WorkerEntry*> by_handle_;
  std::vector<WorkerEntry*> touched_;
  PlacementIndex index_;
};

}  // namespace rc::coordinator
