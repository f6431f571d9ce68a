#pragma once
// The worker's side of WorkerService.Connect: connect, register (capabilities + held
// attempts), then read assignments/cancels while a writer sends batched task events
// and heartbeats. On any failure it reconnects with exponential backoff and jitter,
// re-probing capabilities each time (reconnect_backoff.h). Heartbeats, the backoff and
// Leave's wait are timed on the injected clock (the outbox's must be the same one).

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/config.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"
#include "worker/execution/executor.h"
#include "worker/session/outbox.h"
#include "worker/session/reconnect_backoff.h"

namespace rc::worker {

// The worker's channel to config.join: keepalives, a short gRPC reconnect backoff (the
// session's own decides), messages up to 64 MiB.
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const WorkerConfig& config,
                                                      std::shared_ptr<grpc::ChannelCredentials> credentials);

// The base of RC_CALLBACK_URL (DESIGN.md "Browser automation"): "http[s]://HOST:PORT" with
// HOST as the worker reaches the coordinator (the host of `join`: "HOST:PORT", "[V6]:PORT",
// gRPC's "dns:///HOST:PORT", "ipv4:"/"ipv6:" forms) and PORT the coordinator's HTTP bridge
// (Registered.http_port). "" when http_port is 0 (no HTTP) or `join` names no host. Pure.
std::string CallbackBaseFor(const std::string& join, int http_port, bool http_tls);

class Session {
 public:
  // `on_fatal` runs (once, on the session thread) when retrying cannot help: another
  // worker process registered with the same device id. The session then stops.
  // `credentials`: the channel's (TLS or plaintext), built by the caller so that bad
  // TLS files fail the worker's start.
  Session(const WorkerConfig& config, std::shared_ptr<grpc::ChannelCredentials> credentials, Executor* executor,
          Outbox* outbox, std::function<pb::Capabilities()> probe, std::function<void(absl::Status)> on_fatal,
          const Clock* clock = RealClock::Get());
  // As above, on `channel` (MakeCoordinatorChannel), which the worker shares with the
  // task gateway: the tasks' calls travel on the worker's own connection.
  Session(const WorkerConfig& config, std::shared_ptr<grpc::Channel> channel, Executor* executor, Outbox* outbox,
          std::function<pb::Capabilities()> probe, std::function<void(absl::Status)> on_fatal,
          const Clock* clock = RealClock::Get());
  ~Session();

  void Start();
  // Ends the stream and stops reconnecting; idempotent.
  void Stop();
  // Says goodbye: sends deregister (the coordinator requeues whatever this worker still
  // holds and closes the stream), waits up to `timeout` for the stream to end, then Stop.
  void Leave(absl::Duration timeout);
  // True while registered on a live stream (for tests and logs).
  bool connected() const;

 private:
  void Run();
  // kRefused: UNAUTHENTICATED (no or a wrong join token, or remote without tokens).
  enum class Outcome { kFailed, kRegistered, kReplaced, kRefused };
  // One connection from connect to stream end.
  Outcome ConnectOnce(pb::WorkerService::Stub* stub);
  // Hands a completion from outside (CoordinatorMessage.completions) to the Executor.
  void DeliverCompletion(const pb::CompleteAttempt& c);
  void WriteLoop(grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>* stream,
                 absl::Duration heartbeat, absl::Notification* done);

  const WorkerConfig config_;
  std::string refusal_;  // the coordinator's message, set by ConnectOnce on kRefused (Run's thread only)
  const std::shared_ptr<grpc::Channel> channel_;
  Executor* const executor_;
  Outbox* const outbox_;
  const std::function<pb::Capabilities()> probe_;
  const std::function<void(absl::Status)> on_fatal_;
  const Clock* const clock_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool leaving_ ABSL_GUARDED_BY(mu_) = false;  // deregistered: do not reconnect
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the live attempt
  // Taking from the outbox and writing to the stream happen under it together: the
  // reader thread (after instant tasks) and the writer thread both send.
  absl::Mutex write_mu_;
  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace rc::worker
