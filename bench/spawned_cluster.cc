#include "bench/spawned_cluster.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"

namespace rc::bench {
namespace {

namespace fs = std::filesystem;
namespace pb = ::retire_cluster::v1;

// `name` in `bin_dir` itself (an install) or in its `sub` folder (a build tree).
std::string FindBinary(const std::string& bin_dir, const std::string& sub, const std::string& name) {
  for (const fs::path& p : {fs::path(bin_dir) / name, fs::path(bin_dir) / sub / name}) {
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// This binary sits in BUILD/bench/; the daemons in BUILD/coordinator/ and BUILD/worker/.
std::string DefaultBinDir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : self.parent_path().parent_path().string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpawnedCluster>> SpawnedCluster::Start(const SpawnedClusterOptions& options) {
  if (options.store != "sqlite" && options.store != "memory") {
    return absl::InvalidArgumentError(absl::StrCat("--store: expected sqlite or memory, got '", options.store, "'"));
  }
  const std::string bin_dir = options.bin_dir.empty() ? DefaultBinDir() : options.bin_dir;
  std::unique_ptr<SpawnedCluster> c(new SpawnedCluster());
  c->main_path_ = FindBinary(bin_dir, "coordinator", "retire-cluster-main");
  c->worker_path_ = FindBinary(bin_dir, "worker", "retire-cluster-worker");
  if (c->main_path_.empty() || c->worker_path_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--bin-dir ", bin_dir, ": no executable retire-cluster-main and retire-cluster-worker there ",
                     "or in its coordinator/ and worker/ folders (a build tree)"));
  }
  std::string templ = (fs::path(options.base_dir) / "rc-bench.XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create a temporary directory in ", options.base_dir));
  }
  c->data_dir_ = templ;
  RemoveOnSignal(c->data_dir_);
  const std::string& d = c->data_dir_;
  auto main = ChildProcess::Start({c->main_path_, "--host", "127.0.0.1", "--port", "0", "--http-port", "0",
                                   "--data-dir", d + "/coordinator", "--store", options.store, "--log-level", "warn"},
                                  d + "/main.out", d + "/main.log");
  if (!main.ok()) return main.status();
  c->coordinator_ = std::move(*main);
  // "retire-cluster-main 0.1.0 listening on 127.0.0.1:PORT http 127.0.0.1:PORT"
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10); c->address_.empty();) {
    const std::string out = c->coordinator_->Stdout();
    const size_t at = out.find(" listening on ");
    const size_t end = at == std::string::npos ? at : out.find(" http ", at);
    if (end != std::string::npos) {
      c->address_ = out.substr(at + 14, end - at - 14);
    } else if (c->coordinator_->Exited()) {
      return absl::FailedPreconditionError(
          absl::StrCat(c->main_path_, " exited at start:\n", c->coordinator_->StderrTail()));
    } else if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(c->main_path_, " printed no listening line within 10 s:\n", c->coordinator_->StderrTail()));
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  for (int i = 1; i <= options.workers; ++i) {
    const std::string id = absl::StrCat("bench-worker-", i);
    auto w = ChildProcess::Start({c->worker_path_, "--join", c->address_, "--device-id", id, "--slots",
                                  absl::StrCat(options.slots), "--data-dir", d + "/" + id, "--log-level", "warn"},
                                 d + "/" + id + ".out", d + "/" + id + ".log");
    if (!w.ok()) return w.status();
    c->workers_.push_back(std::move(*w));
  }
  client::Client client(client::ClientOptions{c->address_, absl::Seconds(5), grpc::InsecureChannelCredentials(), ""});
  for (const absl::Time deadline = absl::Now() + absl::Seconds(20);;) {
    auto workers = client.Workers();
    int online = 0;
    if (workers.ok()) {
      for (const pb::Worker& w : *workers) online += w.status() == pb::WORKER_STATUS_ONLINE;
    }
    if (online == options.workers) break;
    for (size_t i = 0; i < c->workers_.size(); ++i) {
      if (c->workers_[i]->Exited()) {
        return absl::FailedPreconditionError(absl::StrCat("worker bench-worker-", i + 1, " exited at start:\n",
                                                          c->workers_[i]->StderrTail()));
      }
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(online, " of ", options.workers,
                                                      " workers came online within 20 s; first worker's log:\n",
                                                      c->workers_.empty() ? "" : c->workers_[0]->StderrTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return c;
}

std::vector<pid_t> SpawnedCluster::worker_pids() const {
  std::vector<pid_t> pids;
  for (const auto& w : workers_) pids.push_back(w->pid());
  return pids;
}

SpawnedCluster::~SpawnedCluster() {
  // All workers stop at once; each destructor then waits for its own (SIGKILL after 10 s).
  for (const auto& w : workers_) {
    if (w->pid() > 0) kill(w->pid(), SIGTERM);
  }
  workers_.clear();
  coordinator_.reset();
  std::error_code ec;
  if (!data_dir_.empty()) {
    fs::remove_all(data_dir_, ec);
    ForgetOnSignal(data_dir_);
  }
}

}  // namespace rc::bench
