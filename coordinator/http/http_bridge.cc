#include "coordinator/http/http_bridge.h"

#include <sys/resource.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/routes.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

constexpr size_t kMinBodyLimit = 2 << 20;

HttpConnectionCaps FitConnectionCaps(int max_connections, int max_connections_per_address, uint64_t fd_limit) {
  HttpConnectionCaps caps{max_connections, max_connections_per_address, false};
  if (fd_limit == static_cast<uint64_t>(RLIM_INFINITY)) return caps;
  const uint64_t room = std::max<uint64_t>(1, fd_limit > 2 * kFileDescriptorReserve ? fd_limit - kFileDescriptorReserve
                                                                                      : fd_limit / 2);
  if (static_cast<uint64_t>(std::max(0, caps.max_connections)) > room) {
    caps.max_connections = static_cast<int>(room);
    caps.max_connections_per_address = std::min(caps.max_connections_per_address, caps.max_connections);
    caps.lowered = true;
  }
  return caps;
}

HttpBridge::~HttpBridge() { Stop(); }

void HttpBridge::Stop() {
  if (server_ != nullptr) server_->Stop();
}

absl::StatusOr<std::unique_ptr<HttpBridge>> HttpBridge::Start(const HttpBridgeOptions& options, ClientApi* api,
                                                              const TaskStore* store) {
  http::HttpServerOptions so;
  so.host = options.host;
  so.port = options.port;
  so.tls = options.tls;
  rlimit files{};
  const uint64_t fd_limit = getrlimit(RLIMIT_NOFILE, &files) == 0 ? files.rlim_cur : RLIM_INFINITY;
  const HttpConnectionCaps caps =
      FitConnectionCaps(options.max_connections, options.max_connections_per_address, fd_limit);
  if (caps.lowered) {
    spdlog::warn(
        "http_max_connections lowered from {} to {} (http_max_connections_per_address: {}) to fit the open-file "
        "limit {}, keeping {} descriptors for gRPC, the store and tasks; raise `ulimit -n` for more",
        options.max_connections, caps.max_connections, caps.max_connections_per_address, fd_limit,
        kFileDescriptorReserve);
  }
  so.max_connections = caps.max_connections;
  so.max_connections_per_address = caps.max_connections_per_address;
  so.header_timeout = options.header_timeout;
  so.body_timeout = options.body_timeout;
  // A task of max_payload_bytes, with its metadata and the JSON around it.
  so.max_body = std::max(kMinBodyLimit, options.max_payload_bytes + (256 << 10));
  so.body_too_large_message =
      absl::StrCat("body larger than ", so.max_body, " bytes (the limit follows max_payload_bytes)");
  absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Listen(so);
  if (!server.ok()) return server.status();

  std::unique_ptr<HttpBridge> b(new HttpBridge());
  b->server_ = std::move(*server);
  b->port_ = b->server_->port();
  http::RoutesOptions ro;
  // Under mTLS the handshake already verified every peer's client certificate.
  ro.client_certified = !options.tls.cert.empty() && !options.tls.ca.empty();
  ro.store = store;
  http::HttpServer* raw = b->server_.get();
  ro.server_metrics = [raw] { return raw->MetricsText(); };
  b->routes_ = std::make_unique<http::BridgeRoutes>(api, b->server_->deferrer(), std::move(ro));
  b->server_->Serve([routes = b->routes_.get()](http::HttpRequest request, std::shared_ptr<http::Responder> r) {
    routes->Handle(request, std::move(r));
  });
  return b;
}

}  // namespace rc::coordinator
