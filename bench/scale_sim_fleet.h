#pragma once
// A fleet of simulated workers in one process, for the scale simulator: each holds a
// real WorkerService.Connect stream (register, heartbeats, instant echo of every
// assignment), so the coordinator sees exactly what thousands of worker processes
// would send. Design assumption: no thread per worker. Streams are gRPC callback
// reactors driven by gRPC's own small thread pool; one sweeper thread paces the
// heartbeats evenly over each interval; streams are spread over several channels
// (separate TCP connections) so no HTTP/2 connection carries more than a few hundred.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"

namespace rc::bench {

namespace pb = ::retire_cluster::v1;

struct FleetOptions {
  std::string target;                  // HOST:PORT of the coordinator
  int workers = 1000;
  int slots = 4;                       // per worker
  int streams_per_channel = 100;
  std::string id_prefix = "sim-";      // device ids are prefix + zero-padded index
};

// Totals since the fleet started; read at any time (relaxed, for rates over windows).
struct FleetCounters {
  std::atomic<int64_t> heartbeats{0};   // heartbeat messages queued for sending
  std::atomic<int64_t> assignments{0};  // tasks received
  std::atomic<int64_t> finished{0};     // TaskFinished reports sent (echo results)
  std::atomic<int64_t> acks{0};         // finished_acks received
};

class SimWorker;

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();  // Stop()

  // Opens every stream (each registers at once) and starts the heartbeat sweeper.
  void Start();
  // True once every worker got its Registered answer; false when `timeout` passed
  // first or a stream ended before registering.
  bool WaitRegistered(absl::Duration timeout);
  // Cancels every stream and waits (bounded) until gRPC is done with all of them.
  void Stop();

  int registered() const;
  int ended() const;
  const FleetCounters& counters() const { return counters_; }
  // The first stream that ended with an error other than our own cancel, or "".
  std::string first_error() const;

  // Called by the workers' reactions.
  void OnRegistered(absl::Duration heartbeat_interval);
  void OnEnded(const std::string& device_id, const grpc::Status& status);
  FleetCounters& mutable_counters() { return counters_; }

 private:
  void SweepHeartbeats();

  const FleetOptions options_;
  FleetCounters counters_;
  std::vector<std::unique_ptr<pb::WorkerService::Stub>> stubs_;  // one per channel
  std::vector<std::unique_ptr<SimWorker>> workers_;
  std::thread sweeper_;
  absl::Notification stop_sweeping_;
  bool stopped_ = false;

  mutable absl::Mutex mu_;
  int registered_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // ends after this are our cancels
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(1);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::bench
