#pragma once
// A running worker: handlers, executor, session. Used by retire-cluster-worker and by
// in-process integration tests.

#include <memory>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/config.h"
#include "worker/execution/executor.h"
#include "worker/gateway/task_gateway.h"
#include "worker/handler.h"
#include "worker/metrics_server.h"
#include "worker/session/outbox.h"
#include "worker/session/session.h"
#include "worker/worker_key.h"

namespace rc::worker {

class Worker {
 public:
  // Probes the machine and starts joining config.join (retrying until it succeeds).
  // INVALID_ARGUMENT when config.allow names a task type this worker cannot run.
  // `on_fatal` is told when the worker gave up for good (see Session).
  // `clock` times attempts, deadlines, heartbeats, reconnects and the drain.
  static absl::StatusOr<std::unique_ptr<Worker>> Start(const WorkerConfig& config,
                                                       std::function<void(absl::Status)> on_fatal = nullptr,
                                                       const Clock* clock = RealClock::Get());
  ~Worker();

  // A graceful shutdown (SIGTERM): asks the coordinator for no new tasks, lets running
  // ones finish for up to `grace`, stops the rest, waits briefly for results to be
  // acknowledged, then deregisters (the coordinator requeues what was stopped at once).
  // Returns how many attempts were handed back unfinished.
  int Drain(absl::Duration grace);
  // Stops running attempts at once (the coordinator requeues them after its grace
  // period), closes the stream.
  void Stop();
  const pb::Capabilities& capabilities() const { return capabilities_; }
  bool connected() const { return session_ != nullptr && session_->connected(); }
  int metrics_port() const { return metrics_ != nullptr ? metrics_->port() : 0; }
  std::string MetricsText() const;

 private:
  explicit Worker(const Clock* clock) : clock_(clock), outbox_(clock) {}

  const Clock* const clock_;
  WorkerConfig config_;
  pb::Capabilities capabilities_;  // as probed at start; re-probed on reconnect
  HandlerRegistry handlers_;
  Outbox outbox_;
  std::unique_ptr<ResultSigner> signer_;  // signs the results of each message outbox_ sends
  std::unique_ptr<TaskGateway> gateway_;  // the tasks' sockets; outlived by executor_ only in Stop
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<MetricsServer> metrics_;
};

}  // namespace rc::worker
