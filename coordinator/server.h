#pragma once
// A running coordinator: the core, its store, the gRPC server and the liveness ticker.
// Used by retire-cluster-main and by in-process integration tests.

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/config.h"
#include "coordinator/api/client_api.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/grpc/grpc_services.h"
#include "coordinator/grpc/health_service.h"
#include "coordinator/http/http_bridge.h"
#include "coordinator/grpc/reflection_v1.h"
#include "grpcpp/server.h"

namespace rc::coordinator {

class CoordinatorServer {
 public:
  // Binds config.host:config.port (port 0 picks a free one) and starts serving.
  // UNAVAILABLE naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const CoordinatorConfig& config,
                                                                  Clock* clock = RealClock::Get());
  ~CoordinatorServer();

  int port() const { return port_; }
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  Coordinator* core() { return core_.get(); }
  const TaskStore* store() const { return store_.get(); }
  // What both front-ends call (tests compare a transport's answers with it).
  ClientApi* api() { return api_.get(); }
  // Ends worker streams and watches, stops the server; idempotent.
  void Shutdown();

 private:
  CoordinatorServer() = default;

  std::unique_ptr<TaskStore> store_;
  std::unique_ptr<JsTaskStore> js_store_;  // on store_'s database (sqlite) or in memory
  std::unique_ptr<JsTaskRegistry> js_tasks_;
  std::unique_ptr<Coordinator> core_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<ClientApi> api_;  // what both front-ends call
  std::unique_ptr<ClientServiceImpl> client_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<ReflectionV1Service> reflection_v1_;
  // Declared before server_, so destroyed after it: a queue is shut down after its server.
  std::unique_ptr<CallQueue> calls_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpBridge> http_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread ticker_;
  bool shut_down_ = false;
};

}  // namespace rc::coordinator
