#include "bench/local_cluster.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"

namespace rc::bench {

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& options) {
  if (options.store != "sqlite" && options.store != "memory") {
    return absl::InvalidArgumentError(absl::StrCat("--store: expected sqlite or memory, got '", options.store, "'"));
  }
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  const std::filesystem::path base =
      options.base_dir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(options.base_dir);
  c->data_dir_ = (base / NewId("rc-bench")).string();
  CoordinatorConfig config;
  config.host = "127.0.0.1";
  config.port = 0;
  config.http_port = 0;
  config.store = options.store;
  config.data_dir = c->data_dir_ + "/coordinator";
  config.log_level = "warn";
  auto server = coordinator::CoordinatorServer::Start(config);
  if (!server.ok()) return server.status();
  c->server_ = std::move(*server);
  c->address_ = absl::StrCat("127.0.0.1:", c->server_->port());
  for (int i = 0; i < options.workers; ++i) {
    WorkerConfig w;
    w.join = c->address_;
    w.device_id = absl::StrCat("bench-worker-", i + 1);
    w.slots = options.slots;
    w.data_dir = absl::StrCat(c->data_dir_, "/", w.device_id);
    auto worker = worker::Worker::Start(w);
    if (!worker.ok()) return worker.status();
    c->workers_.push_back(std::move(*worker));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto online = [&] {
    int n = 0;
    for (const auto& w : c->server_->core()->ListWorkers("")) n += w.status() == pb::WORKER_STATUS_ONLINE;
    return n == options.workers;
  };
  while (!online()) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("local workers did not come online within 10 s");
    absl::SleepFor(absl::Milliseconds(10));
  }
  return c;
}

LocalCluster::~LocalCluster() {
  for (auto& w : workers_) w->Stop();
  workers_.clear();
  if (server_ != nullptr) server_->Shutdown();
  server_.reset();
  std::error_code ec;
  std::filesystem::remove_all(data_dir_, ec);
}

}  // namespace rc::bench
