// browser_session with the REAL headless Chromium (/usr/bin/chromium, installed by
// scripts/install-deps.sh): the handler run directly with a context the test owns (the
// pid callback, a completion inbox, the stop token). Ends by the browser's exit (the test
// kills the pid it was told), by a delivered callback (the browser is stopped), callback
// mode with an early exit (FAILED), a cancel (every process of the browser's group gone),
// the browser's environment (/proc/PID/environ), and a leased profile.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster_fixture.h"
#include "worker/browser/browser_handlers.h"
#include "worker/browser/browser_pool.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/task_process.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kChromium[] = "/usr/bin/chromium";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Alive and not a zombie (an orphaned renderer may wait for a reaper as a zombie).
bool Alive(int pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Live processes whose process group is `pgid`.
std::vector<int> GroupMembers(int pgid) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
    int pgrp = 0;  // fields after comm: state ppid pgrp
    if (f.size() > 2 && absl::SimpleAtoi(f[2], &pgrp) && pgrp == pgid && f[0] != "Z") out.push_back(pid);
  }
  return out;
}

// Live processes whose command line mentions `text` (the test's directory): also those
// outside the browser's group (Chromium's crashpad handler makes a session of its own).
std::vector<int> ProcessesMentioning(const std::string& text) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == getpid()) continue;
    if (ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).find(text) != std::string::npos && Alive(pid)) {
      out.push_back(pid);
    }
  }
  return out;
}

std::map<std::string, std::string> Environ(int pid) {
  std::map<std::string, std::string> env;
  for (absl::string_view kv : absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/environ")), '\0', absl::SkipEmpty())) {
    size_t eq = kv.find('=');
    if (eq != absl::string_view::npos) env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  return env;
}

// Every bounded wait of this file: polls `done` for at most `limit`.
template <typename F>
bool WaitFor(F done, absl::Duration limit = absl::Seconds(30)) {
  absl::Time until = absl::Now() + limit;
  while (absl::Now() < until) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

// A DevToolsActivePort under `root` (the attempt's fresh profile, or a leased one).
bool PortFileUnder(const std::string& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename() == "DevToolsActivePort" && ReadFile(it->path().string()).find('\n') != std::string::npos) {
      return true;
    }
  }
  return false;
}

// One handler over a pool of its own, in a temporary directory; one session at a time.
struct SessionFixture {
  SessionFixture() {
    root = (fs::temp_directory_path() / absl::StrCat("rc-browser-session-", getpid(), "-", absl::ToUnixNanos(absl::Now())))
               .string();
    fs::create_directories(root);
    BrowserOptions b;
    b.chromium = kChromium;
    b.profiles_dir = root + "/profiles";
    b.no_sandbox = geteuid() == 0;
    auto created = BrowserPool::Create(b);
    REQUIRE(created.ok());
    pool = *created;
    ExecutionOptions e;
    e.work_root = root + "/tasks";
    handler = MakeBrowserSessionHandler(pool, e);  // e.limits: the worker defaults (RLIMIT_AS 4 GiB)
  }
  ~SessionFixture() {
    if (stop != nullptr) stop->Cancel();
    if (running.valid()) running.wait();
    // Every process of every session of this test has ended (bounded: killed ones need a moment).
    CHECK(WaitFor([this] { return ProcessesMentioning(root).empty(); }, absl::Seconds(10)));
    handler.reset();
    pool.reset();
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  void Start(const std::string& task_id, const json& payload) {
    payload_text = payload.dump();
    stop = std::make_unique<StopToken>(absl::Now() + absl::Seconds(120));
    ctx = TaskContext{};
    ctx.task_id = task_id;
    ctx.attempt = 1;
    ctx.payload = payload_text;
    ctx.stop = stop.get();
    ctx.on_process_start = [this](int p) { pid.store(p); };
    ctx.completion = &inbox;
    ctx.task_token = "tok-" + task_id;
    ctx.callback_url = absl::StrCat("http://127.0.0.1:1/tasks/", task_id, "/complete");
    running = std::async(std::launch::async, [this] { return handler->Run(ctx); });
    REQUIRE(WaitFor([this] { return pid.load() != 0; }));
    // Started for real: Chromium wrote its port, so its zygote and renderers exist too.
    auto ended = [this] { return running.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
    REQUIRE(WaitFor([&] { return PortFileUnder(root) || ended(); }));
    if (ended()) {
      absl::StatusOr<HandlerOutput> out = running.get();
      FAIL("the session ended before Chromium came up: "
           << (out.ok() ? absl::StrCat(out->failure.ToString(), "\n", out->stderr) : out.status().ToString()));
    }
  }

  absl::StatusOr<HandlerOutput> Finish(absl::Duration limit = absl::Seconds(30)) {
    REQUIRE(running.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(limit))) ==
            std::future_status::ready);
    return running.get();
  }

  std::string root;
  std::shared_ptr<BrowserPool> pool;
  std::unique_ptr<Handler> handler;
  std::string payload_text;
  std::unique_ptr<StopToken> stop;
  TaskContext ctx;
  CompletionInbox inbox;
  std::atomic<int> pid{0};
  std::future<absl::StatusOr<HandlerOutput>> running;
};

}  // namespace

TEST_CASE("browser_session: the browser's exit ends an exit-mode session with SUCCESS", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);  // scripts/install-deps.sh installs chromium
  SessionFixture f;
  f.Start("bs-exit", {{"url", "about:blank"}});
  const int pid = f.pid.load();
  std::string cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  CHECK(cmdline.find("--headless=new") != std::string::npos);  // no display on this worker
  CHECK(cmdline.find("--remote-debugging-port=0") != std::string::npos);

  // The environment a program or extension in the browser calls back with.
  std::map<std::string, std::string> env = Environ(pid);
  CHECK(env["RC_CALLBACK_URL"] == "http://127.0.0.1:1/tasks/bs-exit/complete");
  CHECK(env["RETIRE_CLUSTER_TOKEN"] == "tok-bs-exit");
  CHECK(env["RC_TASK_ID"] == "bs-exit");
  CHECK(env.count("DISPLAY") == 0);
  CHECK(env["HOME"].find(f.root + "/tasks/bs-exit-1-") == 0);
  const std::string task_dir = env["HOME"];
  // Short, for Chromium's SingletonSocket (the attempt's dir here is too long for a socket path).
  const std::string tmp_dir = env["TMPDIR"];
  CHECK(tmp_dir.rfind("/tmp/rc-browser-", 0) == 0);

  std::vector<int> group = GroupMembers(pid);
  CHECK(group.size() > 1);  // the browser and its zygote/renderers, all in its group
  REQUIRE(kill(pid, SIGKILL) == 0);  // as if its user closed it
  absl::StatusOr<HandlerOutput> out = f.Finish();
  REQUIRE(out.ok());
  INFO(out->stderr);
  CHECK(out->failure.ok());
  json r = json::parse(out->result);
  CHECK(r["ended"] == "exit");
  CHECK(r["signal"] == 9);
  CHECK(r["exit_code"] == -1);
  CHECK(r["pid"] == pid);
  CHECK(r["url"] == "about:blank");
  CHECK(r["cdp_url"].get<std::string>().rfind("http://127.0.0.1:", 0) == 0);
  CHECK(out->usage.cpu_seconds() > 0);
  CHECK(out->usage.peak_rss_bytes() > 10 << 20);
  CHECK(WaitFor([&] { return GroupMembers(pid).empty(); }, absl::Seconds(5)));
  for (int p : group) CHECK_FALSE(Alive(p));
  CHECK_FALSE(fs::exists(task_dir));  // the fresh profile went with the attempt's directory
  CHECK_FALSE(fs::exists(tmp_dir));
}

TEST_CASE("browser_session: a delivered callback stops the browser and decides the outcome", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  SessionFixture f;
  bool success = GENERATE(true, false);
  f.Start("bs-callback", {{"url", "data:text/html,<title>cb</title>"}, {"complete_on", "callback"}});
  const int pid = f.pid.load();
  std::vector<int> group = GroupMembers(pid);
  REQUIRE(group.size() > 1);
  ExternalCompletion c;
  c.status = success ? ::retire_cluster::v1::TASK_STATUS_SUCCESS : ::retire_cluster::v1::TASK_STATUS_FAILED;
  c.result = R"({"orders": 3})";
  c.error_message = success ? "" : "login refused";
  REQUIRE(f.inbox.Deliver(c));
  absl::StatusOr<HandlerOutput> out = f.Finish();
  REQUIRE(out.ok());
  CHECK(out->result == R"({"orders": 3})");
  if (success) {
    CHECK(out->failure.ok());
  } else {
    CHECK(out->failure.message() == "login refused");
  }
  CHECK_FALSE(Alive(pid));
  for (int p : group) CHECK(WaitFor([p] { return !Alive(p); }, absl::Seconds(5)));
}

TEST_CASE("browser_session: in callback mode the browser's exit before the callback fails", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  SessionFixture f;
  f.Start("bs-early", {{"url", "about:blank"}, {"complete_on", "callback"}});
  const int pid = f.pid.load();
  REQUIRE(kill(pid, SIGTERM) == 0);
  absl::StatusOr<HandlerOutput> out = f.Finish();
  REQUIRE(out.ok());
  CHECK_FALSE(out->failure.ok());
  const std::string message(out->failure.message());
  // SIGTERM makes Chromium quit in order; how it reports that (code 0, or the signal) is its own.
  CHECK(message.rfind("the browser exited (", 0) == 0);
  CHECK(message.find(") before POST /tasks/bs-early/complete") != std::string::npos);
  CHECK(json::parse(out->result)["ended"] == "exit");
  CHECK(WaitFor([&] { return GroupMembers(pid).empty(); }, absl::Seconds(5)));
}

TEST_CASE("browser_session: a cancel kills every process of the browser's group", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  SessionFixture f;
  f.Start("bs-cancel", {{"url", "data:text/html,<p>x</p>"}});
  const int pid = f.pid.load();
  std::vector<int> group = GroupMembers(pid);
  REQUIRE(group.size() > 1);
  CHECK(ProcessesMentioning(f.root).size() >= group.size());
  const absl::Time cancelled = absl::Now();
  f.stop->Cancel();
  absl::StatusOr<HandlerOutput> out = f.Finish(absl::Seconds(15));
  CHECK(absl::Now() - cancelled < absl::Seconds(10));  // the quit grace (3 s) bounds it
  REQUIRE(out.ok());
  CHECK_FALSE(out->failure.ok());  // the Executor reports CANCELLED from its token
  CHECK(json::parse(out->result)["ended"] == "stopped");
  CHECK(GroupMembers(pid).empty());
  for (int p : group) CHECK(WaitFor([p] { return !Alive(p); }, absl::Seconds(5)));
  CHECK(WaitFor([&] { return ProcessesMentioning(f.root).empty(); }, absl::Seconds(5)));
}

TEST_CASE("browser_session: a leased profile is held while the session runs and kept after it", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  SessionFixture f;
  f.Start("bs-profile", {{"url", "about:blank"}, {"profile", "shop"}});
  const int pid = f.pid.load();
  CHECK(f.pool->Holder("shop") == std::optional<std::string>("bs-profile"));
  CHECK(ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).find(f.root + "/profiles/shop") != std::string::npos);
  // The persistent browser of a profile a session holds cannot start beside it.
  StopToken quick(absl::Now() + absl::Milliseconds(300));
  CHECK(f.pool->Lease("shop", "other-task", quick).status().code() == absl::StatusCode::kCancelled);
  f.stop->Cancel();
  REQUIRE(f.Finish().ok());
  CHECK_FALSE(f.pool->Holder("shop").has_value());
  CHECK(fs::is_directory(f.root + "/profiles/shop/Default"));  // Chromium's data stays for the next task
  CHECK(GroupMembers(pid).empty());
}

TEST_CASE("browser_session: a refused payload starts nothing", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  SessionFixture f;
  StopToken stop(absl::Now() + absl::Seconds(10));
  TaskContext ctx;
  ctx.task_id = "bs-bad";
  ctx.stop = &stop;
  bool started = false;
  ctx.on_process_start = [&](int) { started = true; };
  ctx.payload = R"({"url": "file:///etc/passwd"})";
  absl::StatusOr<HandlerOutput> out = f.handler->Run(ctx);
  CHECK(out.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(out.status().message()).rfind("payload.url: scheme 'file:' refused", 0) == 0);
  // Callback mode on a context without an inbox: this worker cannot run it (retried elsewhere).
  ctx.payload = R"({"url": "about:blank", "complete_on": "callback"})";
  out = f.handler->Run(ctx);
  CHECK(out.status().code() == absl::StatusCode::kFailedPrecondition);
  // Headful on a worker without a display.
  ctx.payload = R"({"url": "about:blank", "headless": false})";
  out = f.handler->Run(ctx);
  CHECK(out.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(out.status().message()).find("--display") != std::string::npos);
  CHECK_FALSE(started);
}

TEST_CASE("browser_session is offered only beside browser, whose pool it uses", "[browser_session][chromium]") {
  REQUIRE(access(kChromium, X_OK) == 0);
  const std::string data_dir = (fs::temp_directory_path() / absl::StrCat("rc-bs-allow-", getpid())).string();
  WorkerConfig config;
  config.data_dir = data_dir;
  config.chromium_path = kChromium;
  config.allow = {"browser_session"};
  HandlerRegistry alone;
  REQUIRE(AddOptInHandlers(config, nullptr, &alone).ok());
  CHECK(alone.Find("browser_session") == nullptr);  // warned, not advertised: such tasks wait
  config.allow = {"browser", "browser_session"};
  HandlerRegistry both;
  REQUIRE(AddOptInHandlers(config, nullptr, &both).ok());
  CHECK(both.Find("browser_session") != nullptr);
  config.chromium_path = "/nonexistent/chromium";
  HandlerRegistry none;
  REQUIRE(AddOptInHandlers(config, nullptr, &none).ok());
  CHECK(none.Find("browser_session") == nullptr);
  std::error_code ec;
  fs::remove_all(data_dir, ec);
}

}  // namespace rc::worker

namespace rc::testing {

TEST_CASE("browser_session through a real worker: running with the browser's pid, SUCCESS on its exit",
          "[browser_session][chromium]") {
  REQUIRE(access(worker::kChromium, X_OK) == 0);
  const std::string data_dir = (std::filesystem::temp_directory_path() / absl::StrCat("rc-bs-worker-", getpid())).string();
  {
    Cluster cluster;
    WorkerConfig w = Cluster::Worker("bs-worker", 1);
    w.allow = {"browser", "browser_session"};
    w.chromium_path = worker::kChromium;
    w.data_dir = data_dir;
    cluster.AddWorker(w);
    pb::TaskSpec spec;
    spec.set_task_type("browser_session");
    spec.set_payload(R"({"url": "data:text/html,<title>session</title>"})");
    spec.mutable_requirements()->set_timeout_seconds(60);
    auto submitted = cluster.client().Submit(spec);
    REQUIRE(submitted.ok());
    const std::string id = submitted->task_id();
    int pid = 0;
    REQUIRE(Eventually(
        [&] {
          auto t = cluster.client().Get(id);
          if (t.ok() && t->status() == pb::TASK_STATUS_RUNNING) pid = t->resource_usage().pid();
          return pid != 0;
        },
        absl::Seconds(30)));
    // The task's own browser: its fresh profile is in the attempt's directory under the data dir.
    CHECK(worker::ReadFile(absl::StrCat("/proc/", pid, "/cmdline")).find("--user-data-dir=" + data_dir + "/tasks/") !=
          std::string::npos);
    REQUIRE(Eventually([&] { return worker::PortFileUnder(data_dir + "/tasks"); }, absl::Seconds(30)));
    REQUIRE(kill(pid, SIGKILL) == 0);
    auto done = cluster.client().Wait(id, absl::Seconds(30));
    REQUIRE(done.ok());
    INFO(done->error_message());
    CHECK(done->status() == pb::TASK_STATUS_SUCCESS);
    nlohmann::json r = nlohmann::json::parse(done->result());
    CHECK(r["ended"] == "exit");
    CHECK(r["pid"] == pid);
    CHECK(r["signal"] == 9);
    CHECK(Eventually([&] { return worker::ProcessesMentioning(data_dir).empty(); }, absl::Seconds(10)));
  }
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
}

}  // namespace rc::testing
