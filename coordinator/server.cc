#include "coordinator/server.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "coordinator/store/js_task_store.h"
#include "coordinator/store/sqlite_task_store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

void LogAccessRules(const TokenTable& tokens) {
  if (tokens.has_join_tokens()) {
    spdlog::info("workers must present a join token");
  } else {
    spdlog::info("no join tokens configured: only workers on this machine (loopback) may join");
  }
  if (tokens.has_client_tokens()) {
    spdlog::info("clients must present a bearer token (gRPC and HTTP)");
  } else {
    spdlog::info("no client tokens configured: only clients on this machine (loopback) are served");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(const CoordinatorConfig& config,
                                                                            Clock* clock) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  if (config.store == "memory") {
    spdlog::warn("store: memory; tasks are lost when the coordinator stops");
    s->store_ = std::make_unique<MemoryTaskStore>();
    s->js_store_ = std::make_unique<MemoryJsTaskStore>();
  } else {
    absl::StatusOr<std::unique_ptr<SqliteTaskStore>> store = SqliteTaskStore::Open(config.data_dir);
    if (!store.ok()) return store.status();
    spdlog::info("task store: {}", (*store)->path());
    s->js_store_ = std::make_unique<SqliteJsTaskStore>((*store)->connection());
    s->store_ = std::move(*store);
  }
  s->js_tasks_ =
      std::make_unique<JsTaskRegistry>(s->js_store_.get(), clock, static_cast<size_t>(config.max_payload_bytes));
  if (absl::Status loaded = s->js_tasks_->Load(); !loaded.ok()) return loaded;
  CoordinatorOptions options;
  options.heartbeat_interval = config.heartbeat_interval;
  options.offline_after = config.offline_after;
  options.reconnect_grace = config.reconnect_grace;
  options.retry_backoff_initial = config.retry_backoff_initial;
  options.retry_backoff_max = config.retry_backoff_max;
  options.retention = config.retention;
  options.restart_grace = config.restart_grace;
  options.limits.max_payload_bytes = static_cast<size_t>(config.max_payload_bytes);
  options.limits.max_metadata_bytes = static_cast<size_t>(config.max_metadata_bytes);
  options.max_unfinished_per_owner = config.max_queued_per_token;
  options.max_unfinished_bytes_per_owner = config.max_queued_bytes_per_token;
  options.memory_payload_budget_bytes = int64_t{config.memory_payload_budget_mb} << 20;
  options.finished_cache_tasks = config.finished_cache_tasks;
  options.random = [gen = std::make_shared<absl::BitGen>()] { return absl::Uniform(*gen, 0.0, 1.0); };
  s->core_ = std::make_unique<Coordinator>(options, s->store_.get(), clock);
  const absl::Time load_start = absl::Now();
  if (absl::Status recovered = s->core_->RecoverFromStore(); !recovered.ok()) return recovered;
  spdlog::info("recovery took {:.3f}s", absl::ToDoubleSeconds(absl::Now() - load_start));
  absl::StatusOr<TokenTable> tokens = TokenTable::Make(config.join_tokens, config.client_tokens);
  if (!tokens.ok()) return tokens.status();
  s->tokens_ = std::make_unique<TokenTable>(std::move(*tokens));
  LogAccessRules(*s->tokens_);
  s->api_ = std::make_unique<ClientApi>(s->core_.get(), s->tokens_.get(), s->js_tasks_.get());
  s->client_service_ = std::make_unique<ClientServiceImpl>(s->api_.get());
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(s->core_.get(), s->tokens_.get());

  const std::string address = absl::StrCat(config.host, ":", config.port);
  // Standard gRPC health checking (ours: health_service.h) and server reflection
  // (`grpcurl -plaintext HOST:PORT list`).
  s->health_ = std::make_unique<HealthService>(
      std::vector<std::string>{pb::ClientService::service_full_name(), pb::WorkerService::service_full_name()});
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = MakeServerCredentials(config.tls);
  if (!creds.ok()) return creds.status();
  if (config.tls.cert.empty() && !IsLoopbackHost(config.host)) {
    spdlog::warn("PLAINTEXT on {} (and the HTTP port): tokens and task data cross the network unencrypted "
                 "and can be read or replayed; set tls_cert_file and tls_key_file (scripts/dev-certs.sh makes "
                 "test ones) or bind to 127.0.0.1",
                 address);
  } else if (!config.tls.cert.empty()) {
    spdlog::info("gRPC and HTTP over TLS{}", config.tls.ca.empty() ? "" : ", client certificates required");
  }
  // The HTTP bridge listens before gRPC serves, so every worker that registers learns
  // its port (Registered.http_port: its tasks' RC_CALLBACK_URL). A gRPC failure below
  // stops it again (~HttpBridge).
  HttpBridgeOptions http_options;
  http_options.host = config.host;
  http_options.port = config.http_port;
  http_options.tls = config.tls;
  http_options.max_payload_bytes = static_cast<size_t>(config.max_payload_bytes);
  http_options.max_connections = config.http_max_connections;
  http_options.max_connections_per_address = config.http_max_connections_per_address;
  http_options.header_timeout = config.http_header_timeout;
  http_options.body_timeout = config.http_body_timeout;
  absl::StatusOr<std::unique_ptr<HttpBridge>> http = HttpBridge::Start(http_options, s->api_.get(), s->store_.get());
  if (!http.ok()) return http.status();
  s->http_ = std::move(*http);
  s->core_->SetCallbackEndpoint(s->http_->port(), !config.tls.cert.empty());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, *creds, &s->port_);
  // A second coordinator on the same port must fail, not silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A SubmitBatch of up to 10000 specs, or a worker's batch of results with their
  // output, can pass gRPC's 4 MiB default; the SDK keeps its batches under 4 MiB.
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(s->client_service_.get());
  builder.RegisterService(s->worker_service_.get());
  builder.RegisterService(s->health_.get());
  // Reflection v1 beside the library's v1alpha: clients ask for v1 first.
  s->reflection_v1_ = std::make_unique<ReflectionV1Service>(std::vector<std::string>{
      pb::ClientService::service_full_name(), pb::WorkerService::service_full_name(), "grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection", ::grpc::reflection::v1::ServerReflection::service_full_name()});
  builder.RegisterService(s->reflection_v1_.get());
  // Workers hold streams open for hours; keepalive notices dead peers on idle streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->calls_ = std::make_unique<CallQueue>(std::move(cq));  // shut down after the server
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (address in use or not local?)"));
  }
  // The client and worker services' calls run on one thread (async_call.h).
  s->calls_ = std::make_unique<CallQueue>(std::move(cq));
  s->client_service_->Listen(s->calls_.get());
  s->worker_service_->Listen(s->calls_.get());
  s->health_->Listen(s->calls_.get());
  s->calls_->Run();
  // Liveness and retry backoff need a clock, not events: tick often enough for both.
  absl::Duration period = std::min(config.heartbeat_interval / 2, absl::Milliseconds(100));
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
  if (http_ != nullptr) http_->Stop();
  health_->ShuttingDown();
  core_->Shutdown();
  client_service_->EndStreams();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_->Wait();
  client_service_->StopBlocking();
  calls_->Shutdown();  // every call has ended: what is left on the queue is delivered
  store_->Close();     // its last callbacks still reach core_, which outlives it
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace rc::coordinator
