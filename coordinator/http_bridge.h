#pragma once
// The HTTP/JSON bridge (DESIGN.md "HTTP bridge"): the client API for shell scripts, cron
// jobs and web backends, on cpp-httplib. JSON in and out with the field names of the
// task model (the same shapes as the CLI's --json); errors are {"error": "..."} with a
// 4xx/5xx code. Handlers call the Coordinator core directly, as the gRPC adapter does.

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/tls.h"
#include "coordinator/coordinator.h"

namespace httplib {
class Server;
struct Request;
}

namespace rc::coordinator {

struct HttpBridgeOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port
  // With `tls.cert`, HTTPS (and with `tls.ca`, client certificates required), like the
  // gRPC port.
  TlsFiles tls;
  // Bearer tokens (`Authorization: Bearer TOKEN`), as on the gRPC port; must outlive the
  // bridge. nullptr = no client tokens: only loopback peers are served.
  const TokenTable* tokens = nullptr;
  // Largest task payload accepted (max_payload_bytes): request bodies may be a little
  // larger than that, and never smaller than 2 MiB (batches).
  size_t max_payload_bytes = 1 << 20;
};

class HttpBridge {
 public:
  // Listens on options.host:port. UNAVAILABLE naming the address when it cannot.
  // `store` (optional) adds its commit latency to /metrics. INVALID_ARGUMENT naming the
  // TLS files when they do not load.
  static absl::StatusOr<std::unique_ptr<HttpBridge>> Start(const HttpBridgeOptions& options, Coordinator* core,
                                                           const TaskStore* store = nullptr);
  ~HttpBridge();
  int port() const { return port_; }
  void Stop();

 private:
  HttpBridge(Coordinator* core, std::unique_ptr<httplib::Server> server);
  void Routes();
  // The caller of `req`: UNAUTHENTICATED without a valid token (or remote without tokens).
  absl::StatusOr<Principal> Caller(const httplib::Request& req) const;

  Coordinator* const core_;
  const TokenTable* tokens_ = nullptr;
  TokenTable no_tokens_;  // used when options.tokens is null
  bool client_certified_ = false;  // mTLS: every connection presented a verified certificate
  size_t max_body_ = 2 << 20;
  const TaskStore* store_ = nullptr;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Prometheus text exposition of the coordinator's state (GET /metrics).
std::string PrometheusText(const ::retire_cluster::v1::Stats& stats,
                           const std::vector<::retire_cluster::v1::Worker>& workers);

}  // namespace rc::coordinator
