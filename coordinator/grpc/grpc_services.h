#pragma once
// gRPC glue for the coordinator (callback API). The reactions only hand work to the
// Coordinator core (which never blocks on I/O) and start the next read or write.

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "coordinator/api/client_api.h"
#include "coordinator/core/coordinator.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"

namespace rc::coordinator {

// ClientService over the client API (coordinator/api): each call is translated to one
// ClientApi call (which authenticates, authorizes, limits and validates) and its Status
// to a gRPC status; nothing else is decided here.
class ClientServiceImpl final : public pb::ClientService::CallbackService {
 public:
  // `api` outlives the service.
  explicit ClientServiceImpl(ClientApi* api) : api_(api) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx, const pb::SubmitRequest* req,
                                   pb::SubmitResponse* resp) override;
  grpc::ServerUnaryReactor* SubmitBatch(grpc::CallbackServerContext* ctx, const pb::SubmitBatchRequest* req,
                                        pb::SubmitBatchResponse* resp) override;
  grpc::ServerBidiReactor<pb::WaitTasksRequest, pb::WaitTasksResponse>* WaitTasks(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx, const pb::GetTaskRequest* req,
                                    pb::Task* resp) override;
  grpc::ServerWriteReactor<pb::Task>* WatchTask(grpc::CallbackServerContext* ctx,
                                                const pb::GetTaskRequest* req) override;
  grpc::ServerWriteReactor<pb::Task>* SubmitAndWatch(grpc::CallbackServerContext* ctx,
                                                     const pb::SubmitRequest* req) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx, const pb::CancelTaskRequest* req,
                                       pb::CancelTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx, const pb::ListTasksRequest* req,
                                      pb::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx, const pb::ListWorkersRequest* req,
                                        pb::ListWorkersResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx, const pb::GetStatsRequest* req,
                                     pb::Stats* resp) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* ctx, const pb::DrainWorkerRequest* req,
                                        pb::Worker* resp) override;
  grpc::ServerUnaryReactor* PublishJsTask(grpc::CallbackServerContext* ctx, const pb::PublishJsTaskRequest* req,
                                          pb::PublishJsTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ListJsTasks(grpc::CallbackServerContext* ctx, const pb::ListJsTasksRequest* req,
                                        pb::ListJsTasksResponse* resp) override;
  grpc::ServerUnaryReactor* GetJsTask(grpc::CallbackServerContext* ctx, const pb::GetJsTaskRequest* req,
                                      pb::JsTask* resp) override;
  grpc::ServerUnaryReactor* RemoveJsTask(grpc::CallbackServerContext* ctx, const pb::RemoveJsTaskRequest* req,
                                         pb::RemoveJsTaskResponse* resp) override;
  grpc::ServerUnaryReactor* CompleteTask(grpc::CallbackServerContext* ctx, const pb::CompleteTaskRequest* req,
                                         pb::CompleteTaskResponse* resp) override;

  // Who is calling, admitted to `op` by the API (UNAUTHENTICATED, PERMISSION_DENIED).
  absl::StatusOr<Principal> Caller(grpc::CallbackServerContext* ctx, ClientOp op) const;

  // Ends every open WaitTasks stream with UNAVAILABLE. Called before the server shuts
  // down: a stream waiting for nothing would otherwise hold it up to its deadline.
  void EndStreams();
  // For the WaitTasks reactors: register while open.
  uint64_t AddStream(std::weak_ptr<TaskSink> sink);
  void RemoveStream(uint64_t id);

 private:
  ClientApi* const api_;
  absl::Mutex streams_mu_;
  absl::flat_hash_map<uint64_t, std::weak_ptr<TaskSink>> streams_ ABSL_GUARDED_BY(streams_mu_);
  uint64_t next_stream_ ABSL_GUARDED_BY(streams_mu_) = 1;
};

// A worker's stream is refused with UNAUTHENTICATED unless it carries a join token
// (or, without join tokens, comes from a loopback peer).
class WorkerServiceImpl final : public pb::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(Coordinator* core, const TokenTable* tokens) : core_(core), tokens_(tokens) {}
  grpc::ServerBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  Coordinator* const core_;
  const TokenTable* const tokens_;
};

// The value of the call's `authorization` metadata ("" when absent).
absl::string_view AuthorizationOf(const grpc::CallbackServerContext& ctx);
// Whether the peer presented a client certificate the server verified (mTLS).
bool PeerCertified(const grpc::CallbackServerContext& ctx);

}  // namespace rc::coordinator
