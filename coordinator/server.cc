#include "coordinator/server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(const CoordinatorConfig& config,
                                                                            Clock* clock) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->store_ = std::make_unique<MemoryTaskStore>();
  CoordinatorOptions options;
  options.heartbeat_interval = config.heartbeat_interval;
  options.offline_after = config.offline_after;
  options.reconnect_grace = config.reconnect_grace;
  s->core_ = std::make_unique<Coordinator>(options, s->store_.get(), clock);
  s->client_service_ = std::make_unique<ClientServiceImpl>(s->core_.get());
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(s->core_.get());

  const std::string address = absl::StrCat(config.host, ":", config.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &s->port_);
  // A second coordinator on the same port must fail, not silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(s->client_service_.get());
  builder.RegisterService(s->worker_service_.get());
  // Workers hold streams open for hours; keepalive notices dead peers on idle streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (address in use or not local?)"));
  }
  // Liveness needs a clock, not events: tick at a fraction of the heartbeat interval.
  absl::Duration period = config.heartbeat_interval / 2;
  CoordinatorServer* raw = s.get();
  s->ticker_ = std::thread([raw, period] {
    while (!raw->stop_.WaitForNotificationWithTimeout(period)) raw->core_->Tick();
  });
  return s;
}

void CoordinatorServer::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  stop_.Notify();
  if (ticker_.joinable()) ticker_.join();
  core_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_->Wait();
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace rc::coordinator
