#pragma once
// The HTTP/JSON bridge (DESIGN.md "HTTP bridge"): the client API for shell scripts, cron
// jobs and web backends. The event-driven server (coordinator/http/http_server.h) serves
// the routes (coordinator/http/routes.h), which call the client API (coordinator/api), as
// the gRPC adapter does. No client can starve it: connections cost no thread, long polls
// hold none, and connections past the caps are refused.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/tls.h"
#include "coordinator/api/client_api.h"
#include "coordinator/http/prometheus_text.h"

namespace rc::coordinator {

namespace http {
class HttpServer;
class BridgeRoutes;
}  // namespace http

struct HttpBridgeOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port
  // With `tls.cert`, HTTPS (and with `tls.ca`, client certificates required), like the
  // gRPC port.
  TlsFiles tls;
  // Largest task payload accepted (max_payload_bytes): request bodies may be a little
  // larger than that, and never smaller than 2 MiB (batches).
  size_t max_payload_bytes = 1 << 20;
  // Open connections at once, in all and from one client address (http_max_connections,
  // http_max_connections_per_address); past them a connection is refused with a 503.
  int max_connections = 4096;
  int max_connections_per_address = 512;
  // Deadlines for a request's headers (and for an idle keep-alive connection) and for
  // its body (http_header_timeout_seconds, http_body_timeout_seconds).
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(60);
};

// Descriptors kept back from HTTP connections for gRPC, the store, logs and tasks' pipes.
inline constexpr uint64_t kFileDescriptorReserve = 256;

struct HttpConnectionCaps {
  int max_connections = 0;
  int max_connections_per_address = 0;
  bool lowered = false;  // max_connections was lowered (per address then at most as many)
};

// Policy: the connection caps that fit under an open-file limit of `fd_limit` (RLIMIT_NOFILE's
// soft value; RLIM_INFINITY for none), keeping kFileDescriptorReserve back (half the limit
// when the limit is under twice the reserve), at least 1. An accept past the limit would fail with
// EMFILE and starve gRPC and the store along with HTTP.
HttpConnectionCaps FitConnectionCaps(int max_connections, int max_connections_per_address, uint64_t fd_limit);

class HttpBridge {
 public:
  // Listens on options.host:port; the connection caps are lowered (with a warning logged)
  // to fit the process's open-file limit (FitConnectionCaps). UNAVAILABLE naming the
  // address when it cannot listen.
  // `store` (optional) adds its commit latency to /metrics. INVALID_ARGUMENT naming the
  // TLS files when they do not load.
  // `api` (which holds the client tokens, as for gRPC) outlives the bridge.
  static absl::StatusOr<std::unique_ptr<HttpBridge>> Start(const HttpBridgeOptions& options, ClientApi* api,
                                                           const TaskStore* store = nullptr);
  ~HttpBridge();
  int port() const { return port_; }
  // Closes every connection (pending long polls unwatch) and joins the threads; call
  // before the core shuts down. Idempotent.
  void Stop();

 private:
  HttpBridge() = default;

  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<http::BridgeRoutes> routes_;
  int port_ = 0;
};

}  // namespace rc::coordinator
