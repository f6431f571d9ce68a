#pragma once
// The deployed shape for the bench (--spawn-workers K): retire-cluster-main and K
// retire-cluster-worker processes started from the build tree on 127.0.0.1, so that each
// one's CPU time can be read from /proc on its own. The data dir is a fresh temp dir,
// removed afterwards; every process is stopped on every exit path (see ChildProcess).

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/child_process.h"

namespace rc::bench {

struct SpawnedClusterOptions {
  int workers = 2;
  int slots = 16;                // per worker
  std::string store = "sqlite";  // the coordinator's --store
  std::string bin_dir;           // holds the binaries, directly or as a build tree; "" = this binary's build tree
  std::string base_dir;          // the temp data dir is made under it
};

class SpawnedCluster {
 public:
  // Starts the coordinator, waits (10 s) for its "listening on" line, starts the workers
  // and waits (20 s) until the coordinator lists every one online.
  static absl::StatusOr<std::unique_ptr<SpawnedCluster>> Start(const SpawnedClusterOptions& options);
  ~SpawnedCluster();  // workers first, then the coordinator; then the data dir

  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return data_dir_; }
  pid_t coordinator_pid() const { return coordinator_->pid(); }
  std::vector<pid_t> worker_pids() const;
  const std::string& main_path() const { return main_path_; }

 private:
  SpawnedCluster() = default;

  std::string data_dir_, main_path_, worker_path_, address_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

}  // namespace rc::bench
