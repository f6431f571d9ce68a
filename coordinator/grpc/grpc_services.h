#pragma once
// gRPC glue for the coordinator (async API, one queue thread: async_call.h). The reactions
// only hand work to the Coordinator core (which never blocks on I/O) and start the next
// read or write.

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "coordinator/api/client_api.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/grpc/async_call.h"
#include "coordinator/grpc/blocking_calls.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"

namespace rc::coordinator {

// ClientService over the client API (coordinator/api): each call is translated to one
// ClientApi call (which authenticates, authorizes, limits and validates) and its Status
// to a gRPC status; nothing else is decided here.
class ClientServiceImpl final : public pb::ClientService::AsyncService {
 public:
  // `api` outlives the service.
  explicit ClientServiceImpl(ClientApi* api) : api_(api) {}

  // Serves every method on `queue` (after the server started).
  void Listen(CallQueue* queue);
  ClientApi* api() const { return api_; }
  // Where handlers that may wait on the store run (blocking_calls.h).
  BlockingCalls* blocking() { return &blocking_; }
  // Finishes what BlockingCalls holds; before the call queue shuts down (the server's
  // Shutdown ends the calls first).
  void StopBlocking() { blocking_.Stop(); }
  // Who is calling, admitted to `op` by the API (UNAUTHENTICATED, PERMISSION_DENIED).
  absl::StatusOr<Principal> Caller(const grpc::ServerContextBase& ctx, ClientOp op) const;

  // Ends every open WaitTasks stream with UNAVAILABLE. Called before the server shuts
  // down: a stream waiting for nothing would otherwise hold it up to its deadline.
  void EndStreams();
  // For the WaitTasks reactors: register while open.
  uint64_t AddStream(std::weak_ptr<TaskSink> sink);
  void RemoveStream(uint64_t id);

 private:
  void ListenWaitTasks(CallQueue* queue);  // wait_call.cc

  ClientApi* const api_;
  std::vector<std::shared_ptr<const void>> methods_;  // what each method's calls refer to
  // Two threads, as gRPC's callback API had for every call: one slow read leaves one free.
  BlockingCalls blocking_{2};
  absl::Mutex streams_mu_;
  absl::flat_hash_map<uint64_t, std::weak_ptr<TaskSink>> streams_ ABSL_GUARDED_BY(streams_mu_);
  uint64_t next_stream_ ABSL_GUARDED_BY(streams_mu_) = 1;
};

// A worker's stream is refused with UNAUTHENTICATED unless it carries a join token
// (or, without join tokens, comes from a loopback peer).
class WorkerServiceImpl final : public pb::WorkerService::AsyncService {
 public:
  WorkerServiceImpl(Coordinator* core, const TokenTable* tokens) : core_(core), tokens_(tokens) {}
  // Serves Connect on `queue` (after the server started).
  void Listen(CallQueue* queue);

 private:
  Coordinator* const core_;
  const TokenTable* const tokens_;
};

// The value of the call's `authorization` metadata ("" when absent).
absl::string_view AuthorizationOf(const grpc::ServerContextBase& ctx);
// Whether the peer presented a client certificate the server verified (mTLS).
bool PeerCertified(const grpc::ServerContextBase& ctx);

}  // namespace rc::coordinator
