#pragma once
// The worker's own Prometheus endpoint (GET /metrics on --metrics-port): slots, running
// attempts, attempts finished by outcome, run time, connection state.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace rc::worker {

class MetricsServer {
 public:
  // `render` produces the exposition text per request. UNAVAILABLE naming the address
  // when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& host, int port,
                                                              std::function<std::string()> render);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer();
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace rc::worker
