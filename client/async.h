#pragma once
// The machinery behind Client::SubmitAsync and Client::WaitAsync (not for direct use).
// Neither starts a thread: calls go out on gRPC's callback API and user callbacks run
// on gRPC's threads, never under a lock of ours.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"

namespace rc::client::internal {

namespace pb = ::retire_cluster::v1;

using SubmitDone = std::function<void(absl::StatusOr<pb::SubmitResponse>)>;
using WaitDone = std::function<void(absl::StatusOr<pb::Task>)>;
// Turns a failed call into the Status the Client reports (names the coordinator).
using ConvertFn = std::function<absl::Status(const grpc::Status&)>;

// Batches submits under load: while `max_in_flight` SubmitBatch calls are on the wire,
// new submits queue, and the next call carries everything queued (up to `max_batch`).
// An idle batcher sends a lone submit at once, so batching never adds a delay.
// Shared with the calls on the wire, which keep it alive until they are done.
class SubmitBatcher : public std::enable_shared_from_this<SubmitBatcher> {
 public:
  // `authorization`: the metadata value each call carries ("Bearer TOKEN"; "" none).
  SubmitBatcher(pb::ClientService::Stub* stub, ConvertFn convert, absl::Duration rpc_timeout,
                std::string authorization, int max_in_flight = 4, size_t max_batch = 2000,
                size_t max_batch_bytes = 3 << 20);

  void Add(pb::TaskSpec spec, SubmitDone done);
  // Waits until every queued submit is answered (the owner calls it before the stub goes).
  void Drain();

 private:
  struct Call;
  // Takes the next batch off the queue when a call may start (nullptr otherwise).
  std::unique_ptr<Call> NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Start(std::unique_ptr<Call> call);
  void Finished(Call* call, const grpc::Status& status);

  pb::ClientService::Stub* const stub_;
  const ConvertFn convert_;
  const absl::Duration rpc_timeout_;
  const std::string authorization_;
  const int max_in_flight_;
  const size_t max_batch_;
  const size_t max_batch_bytes_;  // a larger spec still goes, alone
  absl::Mutex mu_;
  std::vector<pb::TaskSpec> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<SubmitDone> queued_done_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// One WaitTasks stream: ids go out batched (one write on the wire at a time), results
// come back as the tasks end. When the stream breaks, every wait still open gets the
// error; the owner then starts a new stream for later waits.
class ResultStream : public grpc::ClientBidiReactor<pb::WaitTasksRequest, pb::WaitTasksResponse> {
 public:
  static std::shared_ptr<ResultStream> Start(pb::ClientService::Stub* stub, ConvertFn convert,
                                             const std::string& authorization);

  // Takes the wait (moves *done) and returns OK; once the stream has ended, leaves
  // *done alone and returns the error it ended with.
  absl::Status Add(const std::string& task_id, WaitDone* done);
  // Cancels the stream and waits until gRPC is done with it.
  void Shutdown();
  // True once OnDone has run (every callback of this stream has returned).
  bool done() const { return done_.HasBeenNotified(); }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  explicit ResultStream(ConvertFn convert) : convert_(std::move(convert)) {}
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConvertFn convert_;
  grpc::ClientContext ctx_;
  std::shared_ptr<ResultStream> self_;  // keeps this alive until OnDone
  absl::Notification done_;
  pb::WaitTasksResponse response_;
  absl::Mutex mu_;
  pb::WaitTasksRequest writing_ ABSL_GUARDED_BY(mu_);
  pb::WaitTasksRequest queued_ ABSL_GUARDED_BY(mu_);
  bool write_on_wire_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<WaitDone>> waits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::client::internal
