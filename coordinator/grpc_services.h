#pragma once
// gRPC glue for the coordinator (callback API). The reactions only hand work to the
// Coordinator core (which never blocks on I/O) and start the next read or write.

#include "coordinator/coordinator.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"

namespace rc::coordinator {

class ClientServiceImpl final : public pb::ClientService::CallbackService {
 public:
  explicit ClientServiceImpl(Coordinator* core) : core_(core) {}

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
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx, const pb::CancelTaskRequest* req,
                                       pb::CancelTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx, const pb::ListTasksRequest* req,
                                      pb::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* ctx, const pb::ListWorkersRequest* req,
                                        pb::ListWorkersResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx, const pb::GetStatsRequest* req,
                                     pb::Stats* resp) override;

 private:
  Coordinator* const core_;
};

class WorkerServiceImpl final : public pb::WorkerService::CallbackService {
 public:
  explicit WorkerServiceImpl(Coordinator* core) : core_(core) {}
  grpc::ServerBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  Coordinator* const core_;
};

}  // namespace rc::coordinator
