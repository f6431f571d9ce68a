// The worker's persistent browsers against the REAL headless Chromium (/usr/bin/chromium,
// Debian's `chromium`): start, CDP answering on 127.0.0.1, status with a live pid and
// memory, warm reuse, stop, a browser killed behind the pool's back (status says so, the
// next start makes a new one), one task per profile (leases), refusals, the `browser`
// handler, and a worker without Chromium not offering the type (its task waits
// unschedulable). Skipped (WARN) only where /usr/bin/chromium is missing. Every browser is
// stopped by its pool at the end of its test (the pool's destructor).
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include <httplib.h>
#include "nlohmann/json.hpp"
#include "tests/integration/cluster_fixture.h"
#include "worker/browser/browser_handlers.h"
#include "worker/browser/browser_pool.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/process_sampler.h"

namespace rc::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using worker::BrowserOptions;
using worker::BrowserPool;
using worker::BrowserState;

constexpr char kChromium[] = "/usr/bin/chromium";

struct TempDir {
  std::string path = (fs::temp_directory_path() / ("rc-browser-it-" + NewId("b"))).string();
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

std::shared_ptr<BrowserPool> MakePool(const TempDir& dir, const std::string& display = "") {
  BrowserOptions o;
  o.chromium = kChromium;
  o.profiles_dir = dir.path + "/browser/profiles";
  o.display = display;
  o.no_sandbox = geteuid() == 0;
  auto pool = BrowserPool::Create(o);
  REQUIRE(pool.ok());
  return *pool;
}

bool Alive(int pid) { return pid > 0 && kill(pid, 0) == 0; }

// Live (not zombie) processes in process group `pgid`. Zombies are left out: killed
// members wait for whoever reaps orphans, which in a container may be slow or nobody.
int LiveInGroup(int pgid) {
  int live = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::ifstream in(entry.path() / "stat");
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<worker::ProcStat> s = worker::ParseProcStat(text.str());
    if (s.ok() && s->pgrp == pgid && s->state != 'Z') live++;
  }
  return live;
}

// GET /json/version on the browser's CDP endpoint.
json JsonVersion(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto r = http.Get("/json/version");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

}  // namespace

#define SKIP_WITHOUT_CHROMIUM()                                               \
  if (access(kChromium, X_OK) != 0) {                                         \
    WARN("SKIPPED: " << kChromium << " is missing (apt-get install chromium)"); \
    return;                                                                   \
  }

TEST_CASE("browser pool: a real headless Chromium started, reused, looked at and stopped", "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  absl::StatusOr<BrowserState> started = pool->Start("default", true);
  REQUIRE(started.ok());
  CHECK(started->running);
  CHECK(started->profile == "default");
  CHECK(Alive(started->pid));
  CHECK(started->cdp_url == absl::StrCat("http://127.0.0.1:", started->cdp_port));
  json version = JsonVersion(started->cdp_port);
  CHECK(absl::StrContains(version.value("Browser", ""), "Chrome/"));
  CHECK(absl::StartsWith(version.value("webSocketDebuggerUrl", ""),
                         absl::StrCat("ws://127.0.0.1:", started->cdp_port, "/devtools/browser/")));
  // The profile's dir holds its user data, private to the worker's user.
  struct stat st {};
  REQUIRE(stat((dir.path + "/browser/profiles/default").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  absl::StatusOr<BrowserState> status = pool->Status("default");
  REQUIRE(status.ok());
  CHECK(status->running);
  CHECK(status->pid == started->pid);
  CHECK(status->memory_mb > 0);
  CHECK(status->cpu_percent >= 0);

  absl::StatusOr<BrowserState> again = pool->Start("default", true);  // warm: the same browser
  REQUIRE(again.ok());
  CHECK(again->pid == started->pid);
  CHECK(again->cdp_port == started->cdp_port);
  CHECK(pool->Profiles() == std::vector<std::string>{"default"});

  absl::StatusOr<BrowserState> stopped = pool->Stop("default");
  REQUIRE(stopped.ok());
  CHECK_FALSE(stopped->running);
  CHECK(stopped->last_exit.empty());  // stopped on purpose is no crash
  CHECK_FALSE(Alive(started->pid));
  CHECK(Eventually([&] { return LiveInGroup(started->pid) == 0; }, absl::Seconds(5)));  // nor of its group
  absl::StatusOr<BrowserState> after = pool->Status("default");
  REQUIRE(after.ok());
  CHECK_FALSE(after->running);
  CHECK(pool->Stop("default").ok());  // not running is no error
}

TEST_CASE("browser pool: a browser killed behind its back is noticed and replaced", "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  absl::StatusOr<BrowserState> first = pool->Start("work", true);
  REQUIRE(first.ok());
  REQUIRE(kill(first->pid, SIGKILL) == 0);
  BrowserState seen;
  CHECK(Eventually(
      [&] {
        absl::StatusOr<BrowserState> s = pool->Status("work");
        if (s.ok()) seen = *s;
        return s.ok() && !s->running;
      },
      absl::Seconds(10)));
  CHECK(seen.last_exit == "killed by signal 9");
  CHECK(Eventually([&] { return LiveInGroup(first->pid) == 0; }, absl::Seconds(5)));  // its renderers went too

  absl::StatusOr<BrowserState> second = pool->Start("work", true);
  REQUIRE(second.ok());
  CHECK(second->running);
  CHECK(second->pid != first->pid);
  CHECK(Alive(second->pid));
  JsonVersion(second->cdp_port);  // the new one answers (the stale port file was not reused)
  absl::StatusOr<BrowserState> status = pool->Status("work");
  REQUIRE(status.ok());
  CHECK(status->last_exit == "killed by signal 9");  // how the previous one ended, still told
}

TEST_CASE("browser pool: one task per profile; a stopped waiter gives up; stop refused while held", "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  worker::StopToken forever(absl::InfiniteFuture());
  absl::StatusOr<worker::ProfileLease> first = pool->Lease("default", "task-1", forever);
  REQUIRE(first.ok());
  CHECK(pool->Holder("default") == std::optional<std::string>("task-1"));
  CHECK_FALSE(pool->Holder("other").has_value());

  std::atomic<bool> second_got{false};
  std::optional<worker::ProfileLease> second_lease;
  absl::Status second_status;
  std::thread second([&] {  // no Catch2 assertion off the test's thread
    absl::StatusOr<worker::ProfileLease> l = pool->Lease("default", "task-2", forever);
    second_status = l.status();
    if (l.ok()) second_lease.emplace(std::move(*l));
    second_got = true;
  });
  // While task-1 holds it, task-2 waits (a wait can only be shown not to end, so: for a while).
  absl::SleepFor(absl::Milliseconds(300));
  CHECK_FALSE(second_got.load());
  CHECK(pool->Holder("default") == std::optional<std::string>("task-1"));
  *first = worker::ProfileLease();  // task-1 ends
  CHECK(Eventually([&] { return second_got.load(); }, absl::Seconds(5)));
  second.join();
  REQUIRE(second_status.ok());
  CHECK(pool->Holder("default") == std::optional<std::string>("task-2"));

  // A task cancelled while it waits stops waiting, CANCELLED, naming the holder.
  worker::StopToken cancelled(absl::InfiniteFuture());
  absl::Status third_status;
  std::thread third([&] { third_status = pool->Lease("default", "task-3", cancelled).status(); });
  absl::SleepFor(absl::Milliseconds(200));
  cancelled.Cancel();
  third.join();
  CHECK(third_status.code() == absl::StatusCode::kCancelled);
  CHECK(absl::StrContains(third_status.message(), "task-2"));

  REQUIRE(pool->Start("default", true).ok());
  absl::StatusOr<BrowserState> refused = pool->Stop("default");
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(refused.status().message(), "in use by task task-2"));
  CHECK(pool->Status("default")->running);
  absl::StatusOr<BrowserState> by_holder = pool->Stop("default", "task-2");
  REQUIRE(by_holder.ok());
  CHECK_FALSE(by_holder->running);
  second_lease.reset();
  CHECK_FALSE(pool->Holder("default").has_value());
}

TEST_CASE("browser pool: refusals (headful without display, bad names, a running profile for a session)",
          "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  absl::StatusOr<BrowserState> headful = pool->Start("default", false);
  CHECK(headful.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(headful.status().message(), "--display"));
  CHECK(pool->Start("../x", true).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(pool->Status("a/b").status().code() == absl::StatusCode::kInvalidArgument);

  REQUIRE(pool->Start("shared", true).ok());
  absl::StatusOr<std::string> busy = pool->ProfileDirForSession("shared");
  CHECK(busy.status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(pool->Stop("shared").ok());
  worker::StopToken forever(absl::InfiniteFuture());
  absl::StatusOr<worker::ProfileLease> lease = pool->Lease("shared", "session-1", forever);
  REQUIRE(lease.ok());
  absl::StatusOr<std::string> session_dir = pool->ProfileDirForSession("shared");
  REQUIRE(session_dir.ok());
  CHECK(*session_dir == dir.path + "/browser/profiles/shared");
  // While the session's own Chromium may use the dir, the persistent one cannot start on it.
  CHECK(pool->Start("shared", true).status().code() == absl::StatusCode::kFailedPrecondition);
  *lease = worker::ProfileLease();
  CHECK(pool->Start("shared", true).ok());

  BrowserOptions missing;
  missing.chromium = dir.path + "/no-such-chromium";
  missing.profiles_dir = dir.path + "/p2";
  CHECK(BrowserPool::Create(missing).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("browser handler: start, status, stop through the task type", "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  std::unique_ptr<worker::Handler> h = worker::MakeBrowserHandler(pool);
  worker::StopToken forever(absl::InfiniteFuture());
  auto run = [&](const std::string& payload) {
    worker::TaskContext ctx;
    ctx.task_id = "t-" + NewId("t");
    ctx.payload = payload;
    ctx.stop = &forever;
    return h->Run(ctx);
  };
  absl::StatusOr<worker::HandlerOutput> start = run(R"({"operation": "start", "profile": "default"})");
  REQUIRE(start.ok());
  json started = json::parse(start->result);
  CHECK(started["running"] == true);
  CHECK(started["profile"] == "default");
  const int pid = started["pid"].get<int>();
  CHECK(Alive(pid));
  CHECK(absl::StartsWith(started["cdp_url"].get<std::string>(), "http://127.0.0.1:"));

  absl::StatusOr<worker::HandlerOutput> status = run(R"({"operation": "status"})");
  REQUIRE(status.ok());
  json s = json::parse(status->result);
  CHECK(s["pid"] == pid);
  CHECK(s["memory_mb"].get<double>() > 0);

  absl::StatusOr<worker::HandlerOutput> port = run(R"({"operation": "start", "port": 9222})");
  CHECK(port.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(port.status().message(), "the CDP port is chosen by Chromium"));
  CHECK(run(R"({"operation": "reboot"})").status().code() == absl::StatusCode::kInvalidArgument);

  absl::StatusOr<worker::HandlerOutput> stop = run(R"({"operation": "stop"})");
  REQUIRE(stop.ok());
  CHECK(json::parse(stop->result)["running"] == false);
  CHECK_FALSE(Alive(pid));
}

TEST_CASE("browser tasks: offered only by a worker with Chromium; elsewhere they wait unschedulable",
          "[browser]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  // Registration alone: a chromium_path that is not executable registers nothing, no error.
  const std::string not_executable = dir.path + "/chromium";
  std::ofstream(not_executable) << "#!/bin/sh\n";
  WorkerConfig config = Cluster::Worker("no-chromium", 1);
  config.data_dir = dir.path + "/data";
  config.allow = {"browser"};
  config.chromium_path = not_executable;
  worker::HandlerRegistry without;
  REQUIRE(worker::AddOptInHandlers(config, nullptr, &without).ok());
  CHECK(without.Find("browser") == nullptr);
  config.chromium_path = kChromium;
  worker::HandlerRegistry with;
  REQUIRE(worker::AddOptInHandlers(config, nullptr, &with).ok());
  CHECK(with.Find("browser") != nullptr);

  // Through a cluster: the worker without Chromium does not advertise the type, so the task
  // waits with a reason; a worker with it joins and runs it.
  Cluster cluster;
  config.chromium_path = not_executable;
  worker::Worker* lacking = cluster.AddWorker(config);
  const auto& types = lacking->capabilities().task_types();
  CHECK(std::find(types.begin(), types.end(), "browser") == types.end());
  pb::TaskSpec spec;
  spec.set_task_type("browser");
  spec.set_payload(R"({"operation": "start", "profile": "cluster"})");
  spec.mutable_requirements()->set_timeout_seconds(60);
  auto submitted = cluster.client().Submit(spec);
  REQUIRE(submitted.ok());
  std::string reason;
  CHECK(Eventually(
      [&] {
        auto t = cluster.client().Get(submitted->task_id());
        if (t.ok()) reason = t->unschedulable_reason();
        return !reason.empty();
      },
      absl::Seconds(10)));
  CHECK(absl::StrContains(reason, "browser"));

  WorkerConfig able = Cluster::Worker("with-chromium", 1);
  able.data_dir = dir.path + "/data2";
  able.allow = {"browser"};
  able.chromium_path = kChromium;
  cluster.AddWorker(able);
  auto done = cluster.client().Wait(submitted->task_id(), absl::Seconds(60));
  REQUIRE(done.ok());
  INFO("error: " << done->error_message());
  REQUIRE(done->status() == pb::TASK_STATUS_SUCCESS);
  json result = json::parse(done->result());
  CHECK(result["running"] == true);
  CHECK(Alive(result["pid"].get<int>()));
  // The worker's pool stops it when the worker goes (the cluster's end).
}

}  // namespace rc::testing

namespace rc::testing {

// Not a test (hidden: run it by name, `rc_integration_tests "[browser-measure]"`): the
// numbers for the issue's closing note. Cold start = Start on a new profile until CDP
// listens; warm = Start on a running one; idle memory = the group's RSS 2 s after start.
TEST_CASE("browser pool: cold and warm start times, idle memory (measurement)", "[.][browser-measure]") {
  SKIP_WITHOUT_CHROMIUM();
  TempDir dir;
  auto pool = MakePool(dir);
  std::vector<double> cold, warm, idle;
  for (int i = 0; i < 3; ++i) {
    const std::string profile = absl::StrCat("m", i);
    absl::Time t0 = absl::Now();
    REQUIRE(pool->Start(profile, true).ok());
    cold.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    t0 = absl::Now();
    REQUIRE(pool->Start(profile, true).ok());
    warm.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    absl::SleepFor(absl::Seconds(2));
    idle.push_back(pool->Status(profile)->memory_mb);
    REQUIRE(pool->Stop(profile).ok());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  WARN("cold start ms " << cold[0] << " " << cold[1] << " " << cold[2] << " median " << median(cold)
                        << "; warm start ms median " << median(warm) << "; idle memory_mb median " << median(idle));
}

}  // namespace rc::testing
