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
}

namespace rc::coordinator {

class HttpBridge {
 public:
  // Listens on host:port (0 picks a free port). UNAVAILABLE naming the address when it
  // cannot. `store` (optional) adds its commit latency to /metrics. With `tls.cert`, it
  // serves HTTPS (and with `tls.ca`, requires client certificates), like the gRPC port;
  // INVALID_ARGUMENT naming the files when they do not load.
  static absl::StatusOr<std::unique_ptr<HttpBridge>> Start(const std::string& host, int port, Coordinator* core,
                                                           const TaskStore* store = nullptr, const TlsFiles& tls = {});
  ~HttpBridge();
  int port() const { return port_; }
  void Stop();

 private:
  HttpBridge(Coordinator* core, std::unique_ptr<httplib::Server> server);
  void Routes();

  Coordinator* const core_;
  const TaskStore* store_ = nullptr;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Prometheus text exposition of the coordinator's state (GET /metrics).
std::string PrometheusText(const ::retire_cluster::v1::Stats& stats,
                           const std::vector<::retire_cluster::v1::Worker>& workers);

}  // namespace rc::coordinator
