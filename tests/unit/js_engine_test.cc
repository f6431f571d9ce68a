// The engine host manager and the `js` handler against a stand-in host: a small node
// script speaking the host's line protocol with canned behaviours (echo, logs, a child
// call, a throw, a wait that answers cancel, a hang that does not, a death). Checks the
// routing by attempt id, output capping, cancel, the watchdog, restarts after a death and
// the failure the tasks of a dead host get, and what the host sees under bwrap.
// Skipped (WARN) where node is not installed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/js_engine.h"
#include "worker/handlers/js_protocol.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/containment.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char kFakeHost[] = R"JS('use strict';
const fs = require('fs');
const threads = Number(process.argv[process.argv.indexOf('--threads') + 1]);
const out = (m) => process.stdout.write(JSON.stringify(m) + '\n');
const pending = new Map();
const waiting = new Set();
function writable(dir) { try { fs.writeFileSync(dir + '/probe', 'x'); return true; } catch (e) { return false; } }
function run(m) {
  const input = m.input;
  switch (m.code) {
    case 'echo': return out({op: 'done', id: m.id, ok: true, result: {input, memory_mb: m.memory_mb, filename: m.filename, timeout_ms: m.timeout_ms}});
    case 'log': for (let i = 0; i < input.n; i++) out({op: 'log', id: m.id, line: 'line ' + i}); return out({op: 'done', id: m.id, ok: true, result: null});
    case 'call': pending.set(m.id, (r) => out({op: 'done', id: m.id, ok: true, result: r})); return out({op: 'call', id: m.id, call: 1, target: input.target, input: input.input});
    case 'throw': return out({op: 'done', id: m.id, ok: false, limit: null, error: {name: 'Error', message: 'boom', stack: '    at execute (task.js:1:2)\n'}});
    case 'wait': waiting.add(m.id); return;
    case 'hang': return;
    case 'die': process.stderr.write('fake host: dying on purpose\n'); process.exit(3);
    case 'env': return out({op: 'done', id: m.id, ok: true, result: {env: process.env, writable_engine: writable(__dirname), writable_home: writable(process.env.HOME)}});
  }
}
require('readline').createInterface({input: process.stdin}).on('line', (l) => {
  const m = JSON.parse(l);
  if (m.op === 'run') run(m);
  else if (m.op === 'call_result') { const f = pending.get(m.id); if (f) { pending.delete(m.id); f(m); } }
  else if (m.op === 'cancel' && waiting.delete(m.id)) out({op: 'done', id: m.id, ok: false, limit: 'cancelled', error: {name: 'InternalError', message: 'interrupted'}});
}).on('close', () => process.exit(0));
process.stderr.write('fake host: starting\n');
out({op: 'ready', node: process.version, engine: 'fake', threads});
)JS";

bool HaveNode() { return !FindProgram("node", "/usr/local/bin:/usr/bin:/bin").empty(); }

// An engine dir holding the stand-in host (and the files that make it one).
struct FakeEngineDir {
  fs::path root;
  explicit FakeEngineDir(const std::string& host = kFakeHost, const fs::path& base = fs::temp_directory_path())
      : root(base / NewId("rc-fake-js")) {
    fs::create_directories(root / "node_modules" / "quickjs-emscripten-core");
    fs::create_directories(root / "node_modules" / "@jitl" / "quickjs-wasmfile-release-sync");
    std::ofstream(root / "host.js") << host;
    std::ofstream(root / "node_modules/quickjs-emscripten-core/package.json") << "{}";
    std::ofstream(root / "node_modules/@jitl/quickjs-wasmfile-release-sync/package.json") << "{}";
  }
  ~FakeEngineDir() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

struct Tmp {
  fs::path dir = fs::temp_directory_path() / NewId("rc-js-work");
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

absl::StatusOr<HandlerOutput> RunJs(Handler* h, const json& payload, const std::string& task_id = NewId("task"),
                                    StopToken* stop = nullptr) {
  StopToken own(absl::Now() + absl::Seconds(30));
  TaskContext ctx{task_id, 1, payload.dump(), stop != nullptr ? stop : &own, {}, nullptr, false, nullptr};
  return h->Run(ctx);
}

}  // namespace

TEST_CASE("js engine: tasks reach the host by id, results, logs (capped), errors and calls without a socket") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  FakeEngineDir engine;
  Tmp work;
  ExecutionOptions options;
  options.work_root = work.dir.string();
  options.output_cap = 20;
  JsHandlerOptions js;
  js.engine_dir = engine.root.string();
  auto h = MakeJsHandler(options, js);
  REQUIRE(h.ok());

  StopToken stop(absl::Now() + absl::Seconds(30));
  auto echo = RunJs(h->get(), {{"code", "echo"}, {"input", {{"a", 1}}}, {"memory_mb", 16}, {"name", "e"}, {"version", 2}},
                    "task-1", &stop);
  REQUIRE(echo.ok());
  REQUIRE(echo->failure.ok());
  json r = json::parse(echo->result);
  CHECK(r["input"] == json{{"a", 1}});
  CHECK(r["memory_mb"] == 16);
  CHECK(r["filename"] == "e@v2.js");
  CHECK(r["timeout_ms"].get<int64_t>() > 29000);
  CHECK(r["timeout_ms"].get<int64_t>() <= 30250);

  auto logs = RunJs(h->get(), {{"code", "log"}, {"input", {{"n", 2}}}});
  REQUIRE(logs.ok());
  CHECK(logs->stdout == "line 0\nline 1\n");
  CHECK(logs->result == "null");
  auto capped = RunJs(h->get(), {{"code", "log"}, {"input", {{"n", 5}}}});
  REQUIRE(capped.ok());
  CHECK(capped->stdout == "line 0\nline 1\nline 2\n[output truncated at 20 bytes]");  // 20 bytes, then the mark

  auto thrown = RunJs(h->get(), {{"code", "throw"}});
  REQUIRE(thrown.ok());
  CHECK(std::string(thrown->failure.message()) == "Error: boom\n    at execute (task.js:1:2)");
  CHECK(thrown->stderr == "Error: boom\n    at execute (task.js:1:2)\n");

  // No socket (unit tests, a coordinator without task tokens): the call is refused inside JS.
  auto call = RunJs(h->get(), {{"code", "call"}, {"input", {{"target", "add"}, {"input", {{"a", 1}}}}}}, "task-c");
  REQUIRE(call.ok());
  CHECK(json::parse(call->result) == json{{"op", "call_result"},
                                          {"id", "task-c/1"},
                                          {"call", 1},
                                          {"ok", false},
                                          {"error", "this worker cannot submit child tasks (no task socket)"}});

  // Stopped (deadline or cancel): Run returns (the Executor decides the outcome); the
  // host answers cancel and runs the next task.
  StopToken soon(absl::Now() + absl::Milliseconds(300));
  auto stopped = RunJs(h->get(), {{"code", "wait"}}, "task-w", &soon);
  REQUIRE(stopped.ok());
  CHECK(soon.expired());
  auto after = RunJs(h->get(), {{"code", "echo"}, {"input", 2}});
  REQUIRE(after.ok());
  CHECK(json::parse(after->result)["input"] == 2);

  auto bad = RunJs(h->get(), {{"input", 1}});
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("js engine: a stopped task sends cancel and returns, the host stays for the next task") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  FakeEngineDir dir;
  Tmp work;
  JsEngineOptions o;
  o.node = FindProgram("node", "/usr/local/bin:/usr/bin:/bin");
  o.dir = dir.root.string();
  o.work_root = work.dir.string();
  FakeClock clock;
  o.clock = &clock;
  JsEngine engine(o);
  REQUIRE(engine.WaitReady(absl::Seconds(30)));
  const int pid = engine.host_pid();
  CHECK(pid > 0);

  // The task that answers cancel with done: disarmed, no kill however far time goes.
  StopToken never(absl::InfiniteFuture());
  auto inbox = std::make_shared<JsInbox>();
  REQUIRE(engine.Attach("w/1", inbox, never).ok());
  CHECK(engine.Attach("w/1", inbox, never).code() == absl::StatusCode::kAlreadyExists);
  JsPayload wait;
  wait.code = "wait";
  REQUIRE(engine.Send(RunMessage("w/1", wait, 1000)).ok());
  engine.Cancel("w/1");
  // The `done` of a detached task goes nowhere; a task run after it is answered.
  auto next = std::make_shared<JsInbox>();
  REQUIRE(engine.Attach("e/1", next, never).ok());
  JsPayload echo;
  echo.code = "echo";
  REQUIRE(engine.Send(RunMessage("e/1", echo, 1000)).ok());
  std::vector<JsEvent> got;
  for (int i = 0; i < 300 && got.empty(); ++i) got = next->Take(absl::Milliseconds(100));
  REQUIRE(got.size() == 1);
  CHECK(got[0].message["op"] == "done");
  engine.Detach("e/1");
  clock.Advance(absl::Seconds(5));
  for (int i = 0; i < 10; ++i) inbox->Take(absl::Milliseconds(20));  // the supervisor polls meanwhile
  CHECK(inbox->Take(absl::Milliseconds(1)).empty());
  CHECK(engine.host_pid() == pid);
  CHECK(engine.starts() == 1);
}

TEST_CASE("js engine: the watchdog kills a host whose task ignores cancel, its other tasks fail, a new host runs") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  FakeEngineDir dir;
  Tmp work;
  JsEngineOptions o;
  o.node = FindProgram("node", "/usr/local/bin:/usr/bin:/bin");
  o.dir = dir.root.string();
  o.work_root = work.dir.string();
  FakeClock clock;
  o.clock = &clock;
  JsEngine engine(o);
  REQUIRE(engine.WaitReady(absl::Seconds(30)));
  StopToken never(absl::InfiniteFuture());
  auto bystander = std::make_shared<JsInbox>();
  REQUIRE(engine.Attach("b/1", bystander, never).ok());
  JsPayload wait;
  wait.code = "wait";
  REQUIRE(engine.Send(RunMessage("b/1", wait, 1000)).ok());
  auto hung = std::make_shared<JsInbox>();
  REQUIRE(engine.Attach("h/1", hung, never).ok());
  JsPayload hang;
  hang.code = "hang";
  REQUIRE(engine.Send(RunMessage("h/1", hang, 1000)).ok());
  engine.Cancel("h/1");
  clock.Advance(absl::Milliseconds(1999));
  CHECK(bystander->Take(absl::Milliseconds(300)).empty());  // not yet
  clock.Advance(absl::Milliseconds(1));
  std::vector<JsEvent> got;
  for (int i = 0; i < 100 && got.empty(); ++i) got = bystander->Take(absl::Milliseconds(100));
  REQUIRE(got.size() == 1);
  CHECK(got[0].kind == JsEvent::Kind::kEngineExited);
  CHECK_THAT(got[0].reason, Catch::StartsWith("the watchdog: task h/1 did not stop within 2s of its cancel (killed by "
                                              "signal 9"));
  CHECK_THAT(got[0].reason, Catch::EndsWith("; its stderr ends: fake host: starting"));
  REQUIRE(engine.WaitReady(absl::Seconds(30)));
  CHECK(engine.starts() == 2);
  auto after = std::make_shared<JsInbox>();
  REQUIRE(engine.Attach("e/1", after, never).ok());
}

TEST_CASE("js engine: a host that dies fails its tasks UNAVAILABLE naming why, and is restarted") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  FakeEngineDir engine;
  Tmp work;
  ExecutionOptions options;
  options.work_root = work.dir.string();
  JsHandlerOptions js;
  js.engine_dir = engine.root.string();
  auto h = MakeJsHandler(options, js);
  REQUIRE(h.ok());
  auto died = RunJs(h->get(), {{"code", "die"}});
  REQUIRE(!died.ok());
  CHECK(died.status().code() == absl::StatusCode::kUnavailable);  // retried by the coordinator
  CHECK(std::string(died.status().message()) ==
        "js engine exited: exit code 3; its stderr ends: fake host: starting\nfake host: dying on purpose");
  auto echo = RunJs(h->get(), {{"code", "echo"}, {"input", "again"}});
  REQUIRE(echo.ok());
  CHECK(json::parse(echo->result)["input"] == "again");
}

TEST_CASE("js engine: a host that cannot start fails tasks at once and is retried after a backoff") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  FakeEngineDir dir("process.stderr.write('no engine here\\n'); process.exit(2);\n");
  Tmp work;
  JsEngineOptions o;
  o.node = FindProgram("node", "/usr/local/bin:/usr/bin:/bin");
  o.dir = dir.root.string();
  o.work_root = work.dir.string();
  FakeClock clock;
  o.clock = &clock;
  JsEngine engine(o);
  StopToken never(absl::InfiniteFuture());
  absl::Status s;
  for (int i = 0; i < 300; ++i) {
    s = engine.Attach("a/1", std::make_shared<JsInbox>(), never);
    if (!s.ok()) break;
    engine.Detach("a/1");
    absl::SleepFor(absl::Milliseconds(20));
  }
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(s.message()) == "js engine is not running: exit code 2; its stderr ends: no engine here");
  CHECK(engine.starts() == 1);
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(absl::Seconds(1));  // the backoff
  bool restarted = false;
  for (int i = 0; i < 300 && !restarted; ++i) {
    restarted = engine.starts() == 2;
    absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(restarted);
}

TEST_CASE("js engine: under bwrap the host has an empty environment, a read-only engine and its own home") {
  if (!HaveNode()) {
    WARN("SKIPPED: no node on /usr/local/bin:/usr/bin:/bin");
    return;
  }
  WorkerConfig config;
  config.data_dir = (fs::temp_directory_path() / NewId("rc-js-bwrap")).string();
  config.containment = "bwrap";
  config.limit_address_space_mb = 512;  // must not reach the host (node reserves far more)
  auto containment = Containment::Create(config);
  if (!containment.ok()) {
    WARN("SKIPPED: bwrap containment is unavailable here: " << containment.status().message());
    return;
  }
  FakeEngineDir engine(kFakeHost, fs::current_path());  // the host's /tmp is hidden from it
  ExecutionOptions options = ExecutionOptions::FromConfig(config, *containment);
  JsHandlerOptions js;
  js.engine_dir = engine.root.string();
  {
    auto h = MakeJsHandler(options, js);
    REQUIRE(h.ok());
    auto env = RunJs(h->get(), {{"code", "env"}});
    REQUIRE(env.ok());
    json r = json::parse(env->result);
    std::vector<std::string> names;
    for (auto it = r["env"].begin(); it != r["env"].end(); ++it) names.push_back(it.key());
    CHECK(names == std::vector<std::string>{"HOME", "LANG", "PATH", "PWD", "TMPDIR"});  // PWD: bwrap's --chdir
    CHECK(r["writable_engine"] == false);
    CHECK(r["writable_home"] == true);
  }
  // An engine dir the sandbox hides is refused at start.
  FakeEngineDir in_tmp;
  js.engine_dir = in_tmp.root.string();
  auto refused = MakeJsHandler(options, js);
  REQUIRE(!refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(refused.status().message()) ==
        "js_engine_dir: " + in_tmp.root.string() + " is (or holds) a path that containment bwrap hides from tasks");
  std::error_code ec;
  fs::remove_all(config.data_dir, ec);
}

}  // namespace rc::worker
