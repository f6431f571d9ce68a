#pragma once
// Outbound seams of the Coordinator: where it pushes messages to a worker and task
// snapshots to a watcher. The gRPC layer implements them; tests use fakes. The
// Coordinator calls them after releasing its state lock, in the order state changed.
// Implementations must not block and must not call back into the Coordinator.

#include <utility>

#include "absl/status/status.h"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker_service.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  // Queues a message for the worker (dropped if the stream is already gone).
  virtual void Send(pb::CoordinatorMessage message) = 0;
  // A message that may wait (acknowledgements of results, which the worker keeps until
  // then): it rides along with the next Send, or goes at the next Flush, so that it never
  // delays a message that cannot wait (an assignment) by a write of its own.
  virtual void SendLater(pb::CoordinatorMessage message) { Send(std::move(message)); }
  // Sends what SendLater kept (the Coordinator's Tick calls it for every link).
  virtual void Flush() {}
  // Ends the stream with `status` after queued messages are written.
  virtual void Close(absl::Status status) = 0;
};

class TaskSink {
 public:
  virtual ~TaskSink() = default;
  // A snapshot of the watched task; revisions only grow, but a sink may see a later
  // snapshot before an earlier one and must drop the older. The last call carries the
  // terminal state, or `Abort` is called when the Coordinator shuts down.
  virtual void OnTask(pb::Task task) = 0;  // by value: the last holder moves it in
  virtual void Abort(absl::Status status) = 0;
  // True when only the terminal snapshot matters: the others are not even copied.
  virtual bool TerminalOnly() const { return false; }
};

}  // namespace rc::coordinator
