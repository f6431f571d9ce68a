#pragma once
// One ClientService call from a task, relayed byte for byte to the coordinator.
//
// Why a generic (byte-level) proxy rather than a typed one: the worker has nothing to
// read or change in the messages (the coordinator authorizes the task token and checks
// the subtree), so parsing and re-serializing every message would only cost time and
// code (ten typed methods instead of one relay, and every future ClientService method
// would need a worker change). One relay serves unary and streaming calls alike: a
// generic call is a bidi stream on both sides, which is what every gRPC method is on the
// wire. The method name alone says what we need: whether it is a ClientService method at
// all, and whether it waits (WatchTask, WaitTasks, SubmitAndWatch). Measured overhead: see
// bench/task_gateway_bench.cc and the README.
//
// Flow control: one read and one write in flight per side (STYLE.md rule 8). Requests
// go task -> coordinator (read downstream, write upstream, read again when written),
// responses the other way; the upstream status becomes the downstream one.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_callback.h"

namespace rc::worker {

class ForwardedCall;

// One attempt as the gateway serves it: who its calls speak as, which calls are in
// flight, whether any of them waits. Shared by the gateway (until the attempt's socket
// closes) and by the calls (until they end).
class AttemptLink {
 public:
  // Told the attempt's waiting state: true while at least one waiting call is in flight.
  using WaitingListener = std::function<void(const std::string& task_id, int attempt, bool waiting)>;
  AttemptLink(std::string task_id, int attempt, std::string token, WaitingListener on_waiting)
      : task_id_(std::move(task_id)), attempt_(attempt), token_(std::move(token)), on_waiting_(std::move(on_waiting)) {}

  const std::string& task_id() const { return task_id_; }
  int attempt() const { return attempt_; }
  const std::string& token() const { return token_; }

  // False once closed: the call must be refused.
  bool Register(ForwardedCall* call, bool waiting);
  void Unregister(ForwardedCall* call, bool waiting);
  // Refuses new calls and cancels those in flight (their tasks see CANCELLED).
  void Close();

 private:
  // Tells on_waiting_ the current state if it changed; serialized, so the last report
  // is always the current state whatever the threads' order.
  void ReportWaiting();

  const std::string task_id_;
  const int attempt_;
  const std::string token_;
  const WaitingListener on_waiting_;
  absl::Mutex report_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool reported_waiting_ ABSL_GUARDED_BY(report_mu_) = false;
  absl::Mutex mu_;
  absl::flat_hash_set<ForwardedCall*> calls_ ABSL_GUARDED_BY(mu_);
  int waiting_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class ForwardedCall {
 public:
  // The reactor gRPC drives for a call from `link`'s task to `method` (a ClientService
  // method, checked by the caller): relays it on `stub` with the attempt's token in
  // place of whatever authorization the task sent, and the task's deadline. `waiting`:
  // the method waits on tasks (the attempt counts as waiting while it is in flight).
  // UNAVAILABLE at once when the attempt has ended.
  static grpc::ServerGenericBidiReactor* Start(grpc::GenericCallbackServerContext* context, grpc::GenericStub* stub,
                                               std::shared_ptr<AttemptLink> link, bool waiting);
  // A reactor that only answers `status` (a refused call).
  static grpc::ServerGenericBidiReactor* Refuse(grpc::Status status);

  // Cancels the upstream call; the task's call then ends CANCELLED. Safe any time while
  // a reference is held.
  void Cancel() { upstream_context_.TryCancel(); }
  void Ref() { refs_.fetch_add(1); }
  void Unref();

 private:
  class Downstream;
  class Upstream;
  ForwardedCall(std::shared_ptr<AttemptLink> link, bool waiting);
  ~ForwardedCall();

  // Reactions, named by side and event; each only starts the next operation.
  void DownstreamRead(bool ok);
  void DownstreamWritten(bool ok);
  void UpstreamRead(bool ok);
  void UpstreamWritten(bool ok);
  void UpstreamWritesDone();
  void UpstreamDone(const grpc::Status& status);
  // The upstream call sends no more: both directions end.
  void EndResponses();
  // True exactly once, when the request direction can start no more upstream operations
  // (the caller then releases its hold, outside the lock).
  bool TakeRequestHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<AttemptLink> link_;
  const bool waiting_;
  std::atomic<int> refs_{2};  // the two sides' OnDone, plus holders of Ref()
  grpc::ClientContext upstream_context_;
  grpc::ByteBuffer request_;   // downstream read -> upstream write
  grpc::ByteBuffer response_;  // upstream read -> downstream write
  std::unique_ptr<Downstream> downstream_;
  std::unique_ptr<Upstream> upstream_;

  absl::Mutex mu_;
  bool upstream_over_ ABSL_GUARDED_BY(mu_) = false;   // no more upstream reads: it ended
  bool requests_ended_ ABSL_GUARDED_BY(mu_) = false;  // request direction's hold released
  // A request is between the sides: being written upstream, or the next downstream read
  // is being started.
  bool requests_in_transit_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rc::worker
