// The whole loop over real gRPC: client -> coordinator -> worker -> result.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/task_names.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

pb::TaskSpec Spec(const std::string& type, const std::string& payload = "{}",
                  const std::function<void(pb::Requirements*)>& req = nullptr,
                  pb::Priority priority = pb::PRIORITY_NORMAL) {
  pb::TaskSpec s;
  s.set_task_type(type);
  s.set_payload(payload);
  s.set_priority(priority);
  if (req) req(s.mutable_requirements());
  return s;
}

std::string SubmitOk(client::Client& c, const pb::TaskSpec& spec) {
  auto r = c.Submit(spec);
  REQUIRE(r.ok());
  return r->task_id();
}

pb::Task WaitDone(client::Client& c, const std::string& id, absl::Duration limit = absl::Seconds(10)) {
  auto t = c.Wait(id, limit);
  REQUIRE(t.ok());
  return *t;
}

}  // namespace

TEST_CASE("Each requirement routes a task only to a worker that meets it") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("plain", 2, {"ssd"}, "worker"));
  cluster.AddWorker(Cluster::Worker("tagged", 2, {"gpu-box"}, "compute"));
  auto& c = cluster.client();
  const int cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));

  struct Case {
    std::string name;
    std::function<void(pb::Requirements*)> req;
    std::string expect_on;  // "" = whichever
  };
  std::vector<Case> cases = {
      {"tag", [](auto* r) { r->add_required_tags("gpu-box"); }, "tagged"},
      {"tag2", [](auto* r) { r->add_required_tags("ssd"); }, "plain"},
      {"role", [](auto* r) { r->set_required_role("compute"); }, "tagged"},
      {"role2", [](auto* r) { r->set_required_role("worker"); }, "plain"},
      {"device", [](auto* r) { r->set_target_device_id("plain"); }, "plain"},
      {"platform", [](auto* r) { r->set_required_platform("linux"); }, ""},
      {"cores", [cores](auto* r) { r->set_min_cpu_cores(cores); }, ""},
      {"memory", [](auto* r) { r->set_min_memory_gb(0.5); }, ""},
      {"disk", [](auto* r) { r->set_min_storage_gb(0.01); }, ""},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    for (int i = 0; i < 3; ++i) {
      pb::Task t = WaitDone(c, SubmitOk(c, Spec("echo", "{}", k.req)));
      CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
      if (!k.expect_on.empty()) CHECK(t.worker_device_id() == k.expect_on);
    }
  }

  // Requirements nobody meets wait with a reason naming what is missing.
  std::vector<std::pair<std::function<void(pb::Requirements*)>, std::string>> impossible = {
      {[cores](auto* r) { r->set_min_cpu_cores(cores + 1); }, absl::StrCat("CPU cores, needs ", cores + 1)},
      {[](auto* r) { r->set_min_memory_gb(100000); }, "GB RAM, needs 100000"},
      {[](auto* r) { r->set_min_storage_gb(1e9); }, "GB free disk, needs 1e+09"},
      {[](auto* r) { r->set_required_platform("android"); }, "is platform linux, needs android"},
      {[](auto* r) { r->set_target_device_id("nobody"); }, "is not target device 'nobody'"},
  };
  for (const auto& [req, reason] : impossible) {
    std::string id = SubmitOk(c, Spec("echo", "{}", req));
    auto t = c.Get(id);
    REQUIRE(t.ok());
    CHECK(t->status() == pb::TASK_STATUS_QUEUED);
    CHECK_THAT(t->unschedulable_reason(), Catch::Contains(reason));
    REQUIRE(c.Cancel(id)->cancelled());
  }
}

TEST_CASE("The worker object shows the machine's real capabilities") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 3, {"a", "b"}, "compute"));
  auto workers = cluster.client().Workers();
  REQUIRE(workers.ok());
  REQUIRE(workers->size() == 1);
  const pb::Capabilities& c = (*workers)[0].capabilities();
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  CHECK(c.hostname() == host);
  CHECK(c.cpu_cores() == sysconf(_SC_NPROCESSORS_ONLN));
  CHECK(c.memory_gb() > 0.1);
  CHECK(c.storage_gb() > 0);
  CHECK(c.platform() == "linux");
  CHECK_FALSE(c.arch().empty());
  CHECK(c.slots() == 3);
  CHECK(c.role() == "compute");
  CHECK(std::vector<std::string>(c.task_types().begin(), c.task_types().end()) ==
        std::vector<std::string>{"echo", "sleep", "system_info"});

  pb::Task info = WaitDone(cluster.client(), SubmitOk(cluster.client(), Spec("system_info")));
  CHECK(info.status() == pb::TASK_STATUS_SUCCESS);
  CHECK_THAT(info.result(), Catch::Contains(R"("device_id":"w1")"));
  CHECK_THAT(info.result(), Catch::Contains(R"("load_average")"));
}

TEST_CASE("An urgent task nobody can run does not delay lower priorities and can be cancelled") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string urgent = SubmitOk(c, Spec("echo", "{}", [](auto* r) { r->add_required_tags("gpu-box"); },
                                        pb::PRIORITY_URGENT));
  std::string low = SubmitOk(c, Spec("echo", R"({"n":1})", nullptr, pb::PRIORITY_LOW));
  CHECK(WaitDone(c, low).status() == pb::TASK_STATUS_SUCCESS);
  auto t = c.Get(urgent);
  REQUIRE(t.ok());
  CHECK(t->status() == pb::TASK_STATUS_QUEUED);
  CHECK(t->unschedulable_reason() == "no connected worker can run it: w1 lacks tag 'gpu-box'");
  auto cancelled = c.Cancel(urgent);
  REQUIRE(cancelled.ok());
  CHECK(cancelled->cancelled());
  CHECK(WaitDone(c, urgent).status() == pb::TASK_STATUS_CANCELLED);
}

TEST_CASE("With one slot busy, queued tasks start by priority, FIFO within a priority") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string blocker = SubmitOk(c, Spec("sleep", R"({"duration":0.4})"));
  REQUIRE(Eventually([&] { return c.Get(blocker)->status() == pb::TASK_STATUS_RUNNING; }));
  const std::vector<std::pair<std::string, pb::Priority>> plan = {
      {"low1", pb::PRIORITY_LOW},     {"normal1", pb::PRIORITY_NORMAL}, {"urgent1", pb::PRIORITY_URGENT},
      {"high1", pb::PRIORITY_HIGH},   {"normal2", pb::PRIORITY_NORMAL}, {"low2", pb::PRIORITY_LOW},
      {"urgent2", pb::PRIORITY_URGENT}, {"high2", pb::PRIORITY_HIGH},
  };
  std::map<std::string, std::string> ids;
  for (const auto& [name, p] : plan) {
    ids[name] = SubmitOk(c, Spec("sleep", R"({"duration":0.02})", nullptr, p));
  }
  std::vector<std::pair<int64_t, std::string>> started;
  for (const auto& [name, id] : ids) {
    pb::Task t = WaitDone(c, id);
    REQUIRE(t.status() == pb::TASK_STATUS_SUCCESS);
    started.emplace_back(t.started_at_ms(), name);
  }
  std::sort(started.begin(), started.end());
  std::vector<std::string> order;
  for (const auto& [ms, name] : started) order.push_back(name);
  CHECK(order == std::vector<std::string>{"urgent1", "urgent2", "high1", "high2", "normal1", "normal2", "low1",
                                          "low2"});
  for (size_t i = 1; i < started.size(); ++i) CHECK(started[i].first > started[i - 1].first);
}

TEST_CASE("Cancel of a running sleep ends it within a second and frees the slot") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string id = SubmitOk(c, Spec("sleep", R"({"duration":60})"));
  REQUIRE(Eventually([&] { return c.Get(id)->status() == pb::TASK_STATUS_RUNNING; }));
  absl::Time start = absl::Now();
  REQUIRE(c.Cancel(id)->cancelled());
  pb::Task t = WaitDone(c, id);
  CHECK(t.status() == pb::TASK_STATUS_CANCELLED);
  std::string next = SubmitOk(c, Spec("echo", R"({"after":"cancel"})"));
  pb::Task n = WaitDone(c, next, absl::Seconds(5));
  CHECK(n.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(absl::Now() - start < absl::Seconds(1));
}

TEST_CASE("A task past timeout_seconds ends timeout") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string id = SubmitOk(c, Spec("sleep", R"({"duration":30})", [](auto* r) { r->set_timeout_seconds(0.3); }));
  pb::Task t = WaitDone(c, id, absl::Seconds(5));
  CHECK(t.status() == pb::TASK_STATUS_TIMEOUT);
  CHECK(t.error_message() == "timed out after 0.3s");
  CHECK(t.execution_time_seconds() < 1.5);
}

TEST_CASE("200 tasks from 8 concurrent clients all complete exactly once with their own results") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 4));
  cluster.AddWorker(Cluster::Worker("w2", 4));
  std::vector<std::thread> threads;
  std::vector<std::vector<std::pair<std::string, std::string>>> submitted(8);
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      client::Client c(client::ClientOptions{cluster.address(), absl::Seconds(10), nullptr, ""});
      for (int i = 0; i < 25; ++i) {
        std::string payload = absl::StrCat(R"({"client":)", k, R"(,"i":)", i, "}");
        auto r = c.Submit(Spec("echo", payload));
        if (r.ok()) submitted[k].emplace_back(r->task_id(), payload);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (int k = 0; k < 8; ++k) {
    REQUIRE(submitted[k].size() == 25);
    for (const auto& [id, payload] : submitted[k]) {
      pb::Task t = WaitDone(cluster.client(), id);
      CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
      CHECK(t.result() == payload);
      CHECK(t.attempts() == 1);
      ids.insert(id);
    }
  }
  CHECK(ids.size() == 200);
  auto stats = cluster.client().Stats();
  REQUIRE(stats.ok());
  CHECK(stats->tasks_succeeded() == 200);
  CHECK(stats->tasks_scheduled() == 200);
}

TEST_CASE("A task on a worker that goes away runs again on another worker") {
  Cluster cluster;
  worker::Worker* w1 = cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string id = SubmitOk(c, Spec("sleep", R"({"duration":0.3})"));
  REQUIRE(Eventually([&] { return c.Get(id)->status() == pb::TASK_STATUS_RUNNING; }));
  cluster.StopWorker(w1);
  cluster.AddWorker(Cluster::Worker("w2", 1));
  pb::Task t = WaitDone(c, id);
  CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t.worker_device_id() == "w2");
  CHECK(t.attempts() == 2);
  REQUIRE(t.attempt_history_size() == 2);
  CHECK(t.attempt_history(0).worker_device_id() == "w1");
  CHECK_THAT(t.attempt_history(0).error_message(), Catch::Contains("w1 disconnected"));
}

TEST_CASE("Wait follows the server stream and reports progress, a wait that runs out says so") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::string id = SubmitOk(c, Spec("sleep", R"({"duration":0.2})"));
  std::vector<pb::TaskStatus> seen;
  auto t = c.Wait(id, absl::Seconds(10), [&](const pb::Task& t) { seen.push_back(t.status()); });
  REQUIRE(t.ok());
  CHECK(t->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(seen.back() == pb::TASK_STATUS_SUCCESS);
  CHECK(seen.size() >= 2);

  std::string slow = SubmitOk(c, Spec("sleep", R"({"duration":5})"));
  auto late = c.Wait(slow, absl::Milliseconds(200));
  CHECK(late.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK_THAT(std::string(late.status().message()), Catch::Contains(slow));
  CHECK(c.Wait("task-unknown", absl::Seconds(1)).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("SubmitAndWait submits and follows the task in one call, and fails as a submit or a wait would") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  auto& c = cluster.client();
  std::vector<pb::Task> seen;
  auto t = c.SubmitAndWait(Spec("echo", R"({"n":7})"), absl::Seconds(10), [&](const pb::Task& t) { seen.push_back(t); });
  REQUIRE(t.ok());
  CHECK(t->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t->result() == R"({"n":7})");
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.front().task_id() == t->task_id());  // the first snapshot names the accepted task
  CHECK(seen.back().status() == pb::TASK_STATUS_SUCCESS);
  auto stored = c.Get(t->task_id());
  REQUIRE(stored.ok());
  CHECK(stored->status() == pb::TASK_STATUS_SUCCESS);

  auto refused = c.SubmitAndWait(Spec("", "{}"), absl::Seconds(5));
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("task_type"));

  std::vector<pb::Task> slow_seen;
  auto late = c.SubmitAndWait(Spec("sleep", R"({"duration":5})"), absl::Milliseconds(500),
                              [&](const pb::Task& t) { slow_seen.push_back(t); });
  CHECK(late.status().code() == absl::StatusCode::kDeadlineExceeded);
  REQUIRE_FALSE(slow_seen.empty());
  CHECK_THAT(std::string(late.status().message()), Catch::Contains(slow_seen.front().task_id()));
  auto still = c.Get(slow_seen.front().task_id());  // accepted: it runs on after the call gave up
  REQUIRE(still.ok());
  CHECK_FALSE(IsTerminal(still->status()));
}

}  // namespace rc::testing

namespace rc::testing {

TEST_CASE("A worker reconnects with backoff when its coordinator comes back") {
  CoordinatorConfig config = Cluster::FastConfig();
  auto first = coordinator::CoordinatorServer::Start(config);
  REQUIRE(first.ok());
  const int port = (*first)->port();
  WorkerConfig wc = Cluster::Worker("w1", 1);
  wc.join = absl::StrCat("127.0.0.1:", port);
  auto w = worker::Worker::Start(wc);
  REQUIRE(w.ok());
  REQUIRE(Eventually([&] { return (*w)->connected(); }));
  (*first)->Shutdown();
  first->reset();
  REQUIRE(Eventually([&] { return !(*w)->connected(); }));

  config.port = port;
  auto second = coordinator::CoordinatorServer::Start(config);
  REQUIRE(second.ok());
  REQUIRE(Eventually([&] {
    auto list = (*second)->core()->ListWorkers("w1");
    return !list.empty() && list[0].status() == pb::WORKER_STATUS_ONLINE;
  }));
  client::Client c(client::ClientOptions{wc.join, absl::Seconds(5), nullptr, ""});
  auto r = c.Submit(Spec("echo", R"({"after":"restart"})"));
  REQUIRE(r.ok());
  auto t = c.Wait(r->task_id(), absl::Seconds(10));
  REQUIRE(t.ok());
  CHECK(t->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t->result() == R"({"after":"restart"})");
  (*w)->Stop();
  (*second)->Shutdown();
}

}  // namespace rc::testing

namespace rc::testing {

TEST_CASE("A second worker process with the same device id replaces the first, which gives up") {
  Cluster cluster;
  WorkerConfig wc = Cluster::Worker("twin", 1);
  wc.join = cluster.address();
  absl::Notification first_gave_up;
  absl::Status why;
  auto first = worker::Worker::Start(wc, [&](absl::Status s) {
    why = s;
    first_gave_up.Notify();
  });
  REQUIRE(first.ok());
  REQUIRE(Eventually([&] { return (*first)->connected(); }));
  auto second = worker::Worker::Start(wc);
  REQUIRE(second.ok());
  REQUIRE(first_gave_up.WaitForNotificationWithTimeout(absl::Seconds(10)));
  CHECK(why.code() == absl::StatusCode::kAlreadyExists);
  CHECK_THAT(std::string(why.message()), Catch::Contains("device id 'twin'"));
  REQUIRE(Eventually([&] { return (*second)->connected(); }));
  absl::SleepFor(absl::Milliseconds(300));  // the first must not come back and flap
  CHECK((*second)->connected());
  CHECK(cluster.client().Workers()->size() == 1);
  (*first)->Stop();
  (*second)->Stop();
}

}  // namespace rc::testing

namespace rc::testing {

TEST_CASE("A second coordinator on a port in use fails with a clear error") {
  Cluster cluster;
  CoordinatorConfig config = Cluster::FastConfig();
  config.port = std::stoi(cluster.address().substr(cluster.address().rfind(':') + 1));
  auto second = coordinator::CoordinatorServer::Start(config);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(second.status().message()), Catch::Contains(cluster.address()));
  CHECK(cluster.client().Stats().ok());
}

}  // namespace rc::testing

namespace rc::testing {

TEST_CASE("command runs only on a worker that allows it, with exact output and exit code") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("plain", 1));
  auto& c = cluster.client();
  auto ok = c.Submit(Spec("command", R"({"command":"echo out; echo err >&2"})"));
  REQUIRE(ok.ok());
  auto waiting = c.Get(ok->task_id());
  CHECK(waiting->status() == pb::TASK_STATUS_QUEUED);
  CHECK(waiting->unschedulable_reason() == "no connected worker can run it: plain does not run task type 'command'");
  auto plain = c.Workers("plain");
  CHECK(std::find(plain->at(0).capabilities().task_types().begin(), plain->at(0).capabilities().task_types().end(),
                  "command") == plain->at(0).capabilities().task_types().end());

  WorkerConfig willing = Cluster::Worker("willing", 1);
  willing.allow = {"command"};
  cluster.AddWorker(willing);
  pb::Task t = WaitDone(c, ok->task_id());
  CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t.worker_device_id() == "willing");
  CHECK(t.stdout() == "out\n");
  CHECK(t.stderr() == "err\n");
  CHECK(t.exit_code() == 0);
  CHECK(t.resource_usage().peak_rss_bytes() > 0);

  auto bad = c.Submit(Spec("command", R"({"command":"echo partial; exit 7"})",
                           [](auto* r) { r->set_max_retries(0); }));
  pb::Task f = WaitDone(c, bad->task_id());
  CHECK(f.status() == pb::TASK_STATUS_FAILED);
  CHECK(f.exit_code() == 7);
  CHECK(f.stdout() == "partial\n");
  CHECK_THAT(f.error_message(), Catch::StartsWith("exit code 7"));
}

}  // namespace rc::testing

namespace rc::testing {

TEST_CASE("A running command shows its pid, usage is kept when it ends") {
  Cluster cluster;
  WorkerConfig w = Cluster::Worker("w1", 1);
  w.allow = {"command"};
  cluster.AddWorker(w);
  auto& c = cluster.client();
  auto r = c.Submit(Spec("command", R"({"command":"sleep 30"})"));
  REQUIRE(r.ok());
  int pid = 0;
  REQUIRE(Eventually([&] {
    pid = c.Get(r->task_id())->resource_usage().pid();
    return pid > 0;
  }));
  CHECK(kill(pid, 0) == 0);  // that process is really running
  REQUIRE(c.Cancel(r->task_id())->cancelled());
  pb::Task t = WaitDone(c, r->task_id());
  CHECK(t.status() == pb::TASK_STATUS_CANCELLED);
}

}  // namespace rc::testing
