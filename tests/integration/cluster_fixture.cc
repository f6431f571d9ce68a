#include "tests/integration/cluster_fixture.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "common/ids.h"

namespace rc::testing {

bool Eventually(const std::function<bool()>& done, absl::Duration limit) {
  absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

CoordinatorConfig Cluster::FastConfig() {
  CoordinatorConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.http_port = 0;
  c.heartbeat_interval = absl::Milliseconds(100);
  c.offline_after = absl::Seconds(2);
  c.reconnect_grace = absl::Milliseconds(300);
  c.retry_backoff_initial = absl::Milliseconds(50);
  c.retry_backoff_max = absl::Milliseconds(200);
  c.log_level = "warn";
  // A fresh durable store per cluster (removed with it): the integration tests run on
  // the same store as production.
  c.store = "sqlite";
  c.data_dir = (std::filesystem::temp_directory_path() / NewId("rc-test-data")).string();
  return c;
}

WorkerConfig Cluster::Worker(const std::string& device_id, int slots, std::vector<std::string> tags,
                             const std::string& role) {
  WorkerConfig w;
  w.device_id = device_id;
  w.slots = slots;
  w.tags = std::move(tags);
  w.role = role;
  w.data_dir = "/tmp/rc-test-worker";
  w.reconnect_initial = absl::Milliseconds(50);
  w.reconnect_max = absl::Milliseconds(500);
  return w;
}

Cluster::Cluster(CoordinatorConfig config) : data_dir_(config.data_dir) {
  auto server = coordinator::CoordinatorServer::Start(config);
  REQUIRE(server.ok());
  server_ = std::move(*server);
  address_ = absl::StrCat("127.0.0.1:", server_->port());
  client_ = std::make_unique<client::Client>(client::ClientOptions{address_, absl::Seconds(5), nullptr, ""});
}

Cluster::~Cluster() {
  for (auto& w : workers_) w->Stop();
  server_->Shutdown();
  server_.reset();
  std::error_code ec;
  if (!data_dir_.empty()) std::filesystem::remove_all(data_dir_, ec);
}

worker::Worker* Cluster::AddWorker(WorkerConfig config) {
  config.join = address_;
  auto w = worker::Worker::Start(config);
  REQUIRE(w.ok());
  worker::Worker* raw = w->get();
  workers_.push_back(std::move(*w));
  const std::string id = config.device_id;
  REQUIRE(Eventually([&] {
    auto list = core()->ListWorkers(id);
    return !list.empty() && list[0].status() == pb::WORKER_STATUS_ONLINE;
  }));
  return raw;
}

void Cluster::StopWorker(worker::Worker* w) { w->Stop(); }

Run Cli(const std::string& address, std::vector<std::string> args, const std::string& stdin_text) {
  args.insert(args.begin(), {"retire-cluster", "--coordinator", address});
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  int code = client::RunCli(args, in, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace rc::testing
