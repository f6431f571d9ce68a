#pragma once
// An in-process cluster for integration tests: a real CoordinatorServer on
// 127.0.0.1:0 and real Worker sessions over gRPC. Every wait is bounded.

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "coordinator/server.h"
#include "worker/worker.h"

namespace rc::testing {

namespace pb = ::retire_cluster::v1;

class Cluster {
 public:
  explicit Cluster(CoordinatorConfig config = FastConfig());
  ~Cluster();

  // Starts a worker joined to this cluster and waits (up to 10 s) until it is online.
  worker::Worker* AddWorker(WorkerConfig config);
  void StopWorker(worker::Worker* w);
  client::Client& client() { return *client_; }
  const std::string& address() const { return address_; }
  coordinator::Coordinator* core() { return server_->core(); }
  int http_port() const { return server_->http_port(); }

  // Timings short enough for tests.
  static CoordinatorConfig FastConfig();
  static WorkerConfig Worker(const std::string& device_id, int slots, std::vector<std::string> tags = {},
                             const std::string& role = "worker");

 private:
  std::string data_dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::string address_;
  std::unique_ptr<client::Client> client_;
  std::vector<std::unique_ptr<worker::Worker>> workers_;
};

// What the `retire-cluster` CLI printed and returned.
struct Run {
  int code;
  std::string out, err;
};
// Runs the CLI in process against `address` with `args` (and `stdin_text` on its stdin).
Run Cli(const std::string& address, std::vector<std::string> args, const std::string& stdin_text = "");

// Polls `done` every 10 ms until true or `limit` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(10));

}  // namespace rc::testing
