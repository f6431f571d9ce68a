#pragma once
// A throwaway cluster inside the bench process (--local-workers): a CoordinatorServer on
// 127.0.0.1 with a free port and K workers joined to it over loopback gRPC, exactly as
// separate processes would talk. Its data dir is a fresh temp dir, removed afterwards.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/server.h"
#include "worker/worker.h"

namespace rc::bench {

namespace pb = ::retire_cluster::v1;

struct LocalClusterOptions {
  int workers = 2;
  int slots = 16;             // per worker
  std::string store = "sqlite";  // sqlite (durable) | memory
  std::string base_dir;          // the temp data dir is made under it; "" = the system's temp dir
};

class LocalCluster {
 public:
  // Starts everything and waits (up to 10 s) until every worker is online.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();

  const std::string& address() const { return address_; }
  // What the coordinator's store has written so far.
  coordinator::StoreWriteStats store_writes() const { return server_->store()->write_stats(); }

 private:
  LocalCluster() = default;

  std::string data_dir_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::vector<std::unique_ptr<worker::Worker>> workers_;
  std::string address_;
};

}  // namespace rc::bench
