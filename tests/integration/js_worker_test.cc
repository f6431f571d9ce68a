// `js` tasks through a real coordinator and a real worker running the real engine host
// (build/worker/js, target js_engine): results and logs, errors with their stack and
// position, the deadline (and the engine still serving after it), the memory cap, a chain
// of three tasks waiting on each other on a ONE-slot worker, and a fan-out of 20 children
// with Promise.all. Skipped (WARN) only where node or the built engine is absent.
#include <catch2/catch.hpp>

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster_fixture.h"
#include "worker/handlers/js_engine_dir.h"
#include "worker/process/process_runner.h"

namespace rc::testing {
namespace {

using json = nlohmann::json;

// Why js tasks cannot run here, or "".
std::string JsUnavailable() {
  if (worker::FindProgram("node", "/usr/local/bin:/usr/bin:/bin").empty()) return "no node";
  std::vector<std::string> lacks = worker::MissingEngineFilesOnDisk(RC_JS_ENGINE_DIR);
  if (!lacks.empty()) return absl::StrCat(RC_JS_ENGINE_DIR, " lacks ", lacks[0], " (build target js_engine; needs npm)");
  return "";
}

WorkerConfig JsWorker(const std::string& id, int slots) {
  WorkerConfig w = Cluster::Worker(id, slots);
  w.allow = {"js"};
  w.js_engine_dir = RC_JS_ENGINE_DIR;
  return w;
}

pb::Task RunJs(Cluster& cluster, const json& payload, double timeout_seconds = 60, int max_retries = 0) {
  pb::TaskSpec spec;
  spec.set_task_type("js");
  spec.set_payload(payload.dump());
  spec.mutable_requirements()->set_timeout_seconds(timeout_seconds);
  spec.mutable_requirements()->set_max_retries(max_retries);
  auto submitted = cluster.client().Submit(spec);
  REQUIRE(submitted.ok());
  auto done = cluster.client().Wait(submitted->task_id(), absl::Seconds(90));
  REQUIRE(done.ok());
  return *done;
}

constexpr char kEcho[] = R"JS(module.exports = async function execute(input, context) {
  context.log('got', input);
  return {echo: input};
};
)JS";

}  // namespace

#define SKIP_WITHOUT_JS()                                  \
  if (std::string why = JsUnavailable(); !why.empty()) {   \
    WARN("SKIPPED: js tasks cannot run here: " << why);    \
    return;                                                \
  }

TEST_CASE("js worker: results and logs, errors with stack and position, the deadline and the memory cap", "[js]") {
  SKIP_WITHOUT_JS();
  Cluster cluster;
  cluster.AddWorker(JsWorker("js-w1", 2));

  pb::Task echo = RunJs(cluster, {{"code", kEcho}, {"input", {{"a", 1}, {"s", "é"}}}});
  INFO(echo.error_message() << echo.stderr());
  REQUIRE(echo.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(json::parse(echo.result()) == json{{"echo", {{"a", 1}, {"s", "é"}}}});
  CHECK(absl::StrContains(echo.stdout(), "got"));
  CHECK(absl::StrContains(echo.stdout(), R"("a":1)"));

  const char kThrow[] =
      "function helper(x) {\n"
      "  throw new Error('boom ' + x);\n"
      "}\n"
      "module.exports = async function execute(input) {\n"
      "  return helper(input.n);\n"
      "};\n";
  pb::Task thrown = RunJs(cluster, {{"code", kThrow}, {"input", {{"n", 7}}}});
  CHECK(thrown.status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(thrown.error_message(), Catch::StartsWith("Error: boom 7\n"));
  CHECK(absl::StrContains(thrown.error_message(), "helper (task.js:2:"));
  CHECK(absl::StrContains(thrown.stderr(), "helper (task.js:2:"));

  pb::Task syntax = RunJs(cluster, {{"code", "module.exports = async function (input) {\n  return 1 +;\n};\n"}});
  CHECK(syntax.status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(syntax.error_message(), Catch::StartsWith("SyntaxError: "));
  CHECK(std::regex_search(syntax.error_message(), std::regex(R"(task\.js:2:\d+)")));

  // A published task's errors name its file: <name>@v<version>.js (the coordinator resolves
  // the name into code, version and sha256 at submit).
  REQUIRE(cluster.client().PublishJsTask("/** @task adder */\nmodule.exports = () => { x. };\n").ok());
  pb::Task named = RunJs(cluster, {{"name", "adder"}}, 60, /*max_retries=*/2);
  CHECK(named.status() == pb::TASK_STATUS_FAILED);
  CHECK(absl::StrContains(named.error_message(), "adder@v1.js:2:"));
  INFO(named.error_message());
  CHECK(named.attempts() == 1);  // a module that cannot load is not retried

  pb::Task loop = RunJs(cluster, {{"code", "module.exports = function () { for (;;) {} };"}}, 1);
  CHECK(loop.status() == pb::TASK_STATUS_TIMEOUT);
  pb::Task after = RunJs(cluster, {{"code", kEcho}, {"input", 2}});
  INFO(after.error_message());
  CHECK(after.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(json::parse(after.result()) == json{{"echo", 2}});

  pb::Task bomb = RunJs(cluster, {{"memory_mb", 16},
                                  {"code", "module.exports = function () { const a = [];"
                                           " for (;;) a.push(new Array(100000).fill(1)); };"}});
  CHECK(bomb.status() == pb::TASK_STATUS_FAILED);
  CHECK(absl::StrContains(bomb.error_message(), "memory_mb (16 MiB)"));
  pb::Task still = RunJs(cluster, {{"code", kEcho}, {"input", 3}});
  CHECK(still.status() == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("js worker: a chain of three tasks waiting on each other ends on a ONE-slot worker", "[js]") {
  SKIP_WITHOUT_JS();
  Cluster cluster;
  cluster.AddWorker(JsWorker("js-chain", 1));
  // parent js -> child js -> grandchild echo; the code of each level comes in its input.
  const char kChild[] = R"JS(module.exports = async function (input, context) {
  const r = await context.tasks.execute({task_type: 'echo', payload: {level: 2, from: input.from}});
  return {child: true, grandchild: r};
};
)JS";
  const char kParent[] = R"JS(module.exports = async function (input, context) {
  context.log('parent calls');
  const r = await context.tasks.execute({task_type: 'js', payload: {code: input.child}}, {from: 'parent'});
  context.log('parent got', r);
  return {parent: true, child: r};
};
)JS";
  pb::Task done = RunJs(cluster, {{"code", kParent}, {"input", {{"child", kChild}}}});
  INFO(done.error_message() << done.stderr() << done.stdout());
  REQUIRE(done.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(json::parse(done.result()) ==
        json{{"parent", true}, {"child", {{"child", true}, {"grandchild", {{"level", 2}, {"from", "parent"}}}}}});
  CHECK(absl::StrContains(done.stdout(), "parent got"));
  pb::ListTasksRequest list;
  list.set_parent_task_id(done.task_id());
  auto children = cluster.client().List(list);
  REQUIRE(children.ok());
  REQUIRE(children->size() == 1);
  CHECK((*children)[0].depth() == 1);
  CHECK((*children)[0].spec().task_type() == "js");
  list.set_parent_task_id((*children)[0].task_id());
  auto grandchildren = cluster.client().List(list);
  REQUIRE(grandchildren.ok());
  REQUIRE(grandchildren->size() == 1);
  CHECK((*grandchildren)[0].depth() == 2);
  CHECK((*grandchildren)[0].status() == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("js worker: Promise.all of 20 children, and a failed child rejects with a TaskError", "[js]") {
  SKIP_WITHOUT_JS();
  Cluster cluster;
  cluster.AddWorker(JsWorker("js-fan", 2));
  const char kFan[] = R"JS(module.exports = async function (input, context) {
  const rs = await Promise.all(Array.from({length: 20},
      (_, i) => context.tasks.execute({task_type: 'echo', payload: {i}})));
  let caught = null;
  try {
    await context.tasks.execute({task_type: 'js', payload: {code: "module.exports = () => { throw new Error('no'); }"}},
                                null, {max_retries: 0});
  } catch (e) {
    caught = {message: e.message, taskId: e.taskId, status: e.status};
  }
  return {is: rs.map((r) => r.i), caught};
};
)JS";
  pb::Task done = RunJs(cluster, {{"code", kFan}});
  INFO(done.error_message() << done.stderr());
  REQUIRE(done.status() == pb::TASK_STATUS_SUCCESS);
  json r = json::parse(done.result());
  json want = json::array();
  for (int i = 0; i < 20; ++i) want.push_back(i);
  CHECK(r["is"] == want);
  const std::string message = r["caught"]["message"].get<std::string>();
  CHECK(std::regex_search(message, std::regex(R"(^child task \S+ \(js\) ended failed: Error: no)")));
  CHECK(r["caught"]["status"] == "failed");
  CHECK(absl::StrContains(message, r["caught"]["taskId"].get<std::string>()));
  pb::ListTasksRequest list;
  list.set_parent_task_id(done.task_id());
  list.set_limit(100);
  auto children = cluster.client().List(list);
  REQUIRE(children.ok());
  CHECK(children->size() == 21);
}

}  // namespace rc::testing
