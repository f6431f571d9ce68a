// Published JavaScript tasks through the CLI (`tasks publish|list|show|remove`, `run`) and the
// C++ SDK against a real coordinator. No js worker is needed: a FakeWorker offering `js` is
// handed the resolved payload a real one would run, and ends the attempt as told.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/client.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/fake_worker.h"

namespace rc::testing {
namespace {

using nlohmann::json;

constexpr char kGreet[] = R"(/**
 * @task greet
 * @description Says hello.
 * @param {string} input.name - who to greet
 * @returns {Object} the greeting
 */
module.exports = async function execute(input) { return {hello: input.name}; };
)";

// A directory of files a test writes, removed with it.
class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / NewId("rc-js-cli")) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("CLI: tasks publish, list, show and remove, and run submits the resolved js task") {
  Cluster cluster;
  const std::string a = cluster.address();
  TempDir dir;
  const std::string file = dir.Write("greet.js", kGreet);

  Run r = Cli(a, {"tasks", "publish", file, "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  json published = json::parse(r.out);
  CHECK(published["unchanged"] == false);
  CHECK(published["task"]["name"] == "greet");
  CHECK(published["task"]["version"] == 1);
  const std::string sha = published["task"]["sha256"];
  r = Cli(a, {"tasks", "publish", file});
  CHECK(r.code == 0);
  CHECK(r.out == "greet: unchanged, version 1 has this code (sha256 " + sha + ")\n");
  r = Cli(a, {"tasks", "publish", file, "--name", "hello"});
  CHECK(r.code == 0);
  CHECK(r.out == "published hello version 1 (sha256 " + sha + ")\n");

  r = Cli(a, {"tasks", "list", "--json"});
  REQUIRE(r.code == 0);
  json list = json::parse(r.out);
  REQUIRE(list["tasks"].size() == 2);
  CHECK(list["tasks"][0]["name"] == "greet");
  CHECK(list["tasks"][1]["name"] == "hello");
  CHECK(list["tasks"][0]["description"] == "Says hello.");
  r = Cli(a, {"tasks", "list"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("NAME   VERSION  VERSIONS  OWNER"));
  CHECK_THAT(r.out, Catch::Contains("Says hello."));

  r = Cli(a, {"tasks", "show", "greet"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("name:          greet\nversion:       1 (1 stored)\n"));
  CHECK_THAT(r.out, Catch::Contains("sha256:        " + sha));
  CHECK_THAT(r.out, Catch::Contains("description:\n  Says hello.\nparams:\n  input.name  {string}  who to greet\n"));
  CHECK_THAT(r.out, Catch::Contains("returns:       {Object} the greeting"));
  r = Cli(a, {"tasks", "show", "greet", "--code"});
  CHECK(r.out == kGreet);  // byte for byte: `tasks show NAME --code > FILE.js` round-trips
  r = Cli(a, {"tasks", "show", "greet", "--version", "1", "--json"});
  REQUIRE(r.code == 0);
  CHECK(json::parse(r.out)["code"] == kGreet);

  // run: the js task as the coordinator stored it, with the code resolved at submit.
  r = Cli(a, {"run", "greet", "--input", R"({"name":"ada"})", "--priority", "high", "--timeout", "30"});
  REQUIRE(r.code == 0);
  const std::string id = r.out.substr(0, r.out.size() - 1);
  r = Cli(a, {"get", id, "--json"});
  REQUIRE(r.code == 0);
  json t = json::parse(r.out);
  CHECK(t["task_type"] == "js");
  CHECK(t["priority"] == "high");
  CHECK(t["requirements"]["timeout_seconds"] == 30);
  CHECK(t["payload"]["name"] == "greet");
  CHECK(t["payload"]["version"] == 1);
  CHECK(t["payload"]["sha256"] == sha);
  CHECK(t["payload"]["code"] == kGreet);
  CHECK(t["payload"]["input"] == json{{"name", "ada"}});

  const std::string input = dir.Write("input.json", R"(["from", "a file"])");
  r = Cli(a, {"run", "hello", "--input", "@" + input, "--version", "1", "--memory-mb", "128", "--json"});
  REQUIRE(r.code == 0);
  json accepted = json::parse(r.out);
  CHECK(accepted["status"] == "queued");
  t = json::parse(Cli(a, {"get", accepted["task_id"].get<std::string>(), "--json"}).out);
  CHECK(t["payload"]["name"] == "hello");
  CHECK(t["payload"]["input"] == json::array({"from", "a file"}));
  CHECK(t["payload"]["memory_mb"] == 128);
  r = Cli(a, {"run", "greet", "--input", "-"}, R"({"name":"stdin"})");
  REQUIRE(r.code == 0);
  t = json::parse(Cli(a, {"get", r.out.substr(0, r.out.size() - 1), "--json"}).out);
  CHECK(t["payload"]["input"]["name"] == "stdin");
  r = Cli(a, {"run", "greet"});
  REQUIRE(r.code == 0);
  t = json::parse(Cli(a, {"get", r.out.substr(0, r.out.size() - 1), "--json"}).out);
  CHECK(t["payload"]["input"] == json::object());

  r = Cli(a, {"tasks", "remove", "hello", "--version", "1"});
  CHECK(r.code == 0);
  CHECK(r.out == "removed hello version 1\n");
  r = Cli(a, {"tasks", "remove", "greet", "--json"});
  CHECK(r.code == 0);
  CHECK(json::parse(r.out) == json{{"removed_versions", 1}});
  r = Cli(a, {"tasks", "list"});
  CHECK(r.out == "NAME  VERSION  VERSIONS  OWNER  DESCRIPTION\n");
}

TEST_CASE("CLI: js task mistakes exit non-zero naming the flag, file or name") {
  Cluster cluster;
  const std::string a = cluster.address();
  TempDir dir;
  REQUIRE(Cli(a, {"tasks", "publish", dir.Write("greet.js", kGreet)}).code == 0);

  Run r = Cli(a, {"tasks", "publish", dir.path() + "/missing.js"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: tasks publish: cannot read " + dir.path() + "/missing.js: No such file or directory\n");
  r = Cli(a, {"tasks", "publish", dir.path()});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: tasks publish: cannot read " + dir.path() + ": it is a directory\n");
  r = Cli(a, {"tasks", "publish", dir.Write("plain.js", "module.exports = () => 1;\n")});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: code: no JSDoc @task tag (start the file with /** @task NAME ... */)\n");
  r = Cli(a, {"tasks", "publish"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: tasks publish: expected one FILE.js\n");

  r = Cli(a, {"run", "greet", "--input", "{name: 1}"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --input is not valid JSON\n");
  r = Cli(a, {"run", "greet", "--input", "@" + dir.path() + "/none.json"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --input: cannot read " + dir.path() + "/none.json: No such file or directory\n");
  r = Cli(a, {"run", "greet", "--input", "@" + dir.Write("bad.json", "{")});
  CHECK(r.err == "error: --input (" + dir.path() + "/bad.json) is not valid JSON\n");
  r = Cli(a, {"run", "greet", "--version", "0"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("error: --version: must be 1..2147483647, got 0"));
  r = Cli(a, {"run", "greet", "--memory-mb", "4096"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("error: --memory-mb: must be 1..2048, got 4096"));
  r = Cli(a, {"run", "nope"});
  CHECK(r.code == client::kExitNotFound);
  CHECK(r.err == "error: payload.name: no published task 'nope'\n");
  r = Cli(a, {"run", "greet", "--version", "9"});
  CHECK(r.code == client::kExitNotFound);
  r = Cli(a, {"run"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: run: expected one published task NAME\n");
  r = Cli(a, {"run", "greet", "--payload", "{}"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("unknown flag --payload"));

  r = Cli(a, {"tasks", "show", "nope"});
  CHECK(r.code == client::kExitNotFound);
  CHECK_THAT(r.err, Catch::Contains("nope"));
  r = Cli(a, {"tasks", "remove", "nope"});
  CHECK(r.code == client::kExitNotFound);
  r = Cli(a, {"tasks", "frobnicate"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: tasks: unknown sub-command 'frobnicate' (publish, list, show or remove)\n");
  r = Cli(a, {"tasks"});
  CHECK(r.err == "error: tasks: expected publish, list, show or remove\n");
  r = Cli(a, {"tasks", "list", "--code"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("unknown flag --code"));
  // The global --version still prints ours before a command.
  r = Cli(a, {"--version"});
  CHECK_THAT(r.out, Catch::StartsWith("retire-cluster "));
}

TEST_CASE("CLI: run --wait prints the result and exits non-zero when the task failed") {
  Cluster cluster;
  const std::string a = cluster.address();
  TempDir dir;
  REQUIRE(Cli(a, {"tasks", "publish", dir.Write("greet.js", kGreet)}).code == 0);
  FakeWorker worker(a, "js-1", "js");

  auto run = std::async(std::launch::async, [&] { return Cli(a, {"run", "greet", "--input", "[7]", "--wait"}); });
  // Should a check fail, the waiting CLI must still return: cancel what is left.
  struct CancelLeft {
    Cluster& cluster;
    ~CancelLeft() {
      absl::StatusOr<std::vector<pb::Task>> tasks = cluster.client().List(pb::ListTasksRequest());
      for (const pb::Task& t : tasks.ok() ? *tasks : std::vector<pb::Task>()) (void)cluster.client().Cancel(t.task_id());
    }
  } cancel_left{cluster};
  std::optional<pb::Assignment> got = worker.NextAssignment();
  REQUIRE(got.has_value());
  CHECK(got->task_type() == "js");
  json payload = json::parse(got->payload());  // what a js worker runs
  CHECK(payload["code"] == kGreet);
  CHECK(payload["input"] == json::array({7}));
  CHECK(payload["version"] == 1);
  worker.Finish(*got);
  Run r = run.get();
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out == "{}\n");  // the fake worker's result

  // No retries: the failure is the task's end.
  run = std::async(std::launch::async, [&] { return Cli(a, {"run", "greet", "--max-retries", "0", "--wait"}); });
  got = worker.NextAssignment();
  REQUIRE(got.has_value());
  worker.Finish(*got, pb::TASK_STATUS_FAILED);
  r = run.get();
  CHECK(r.code == client::kExitTaskFailed);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains("error: task " + got->task_id() + " (greet) ended failed"));
}

TEST_CASE("C++ SDK: publish, list, get, run with options, remove, and a task token may read and run but not publish") {
  Cluster cluster;
  client::Client& c = cluster.client();
  absl::StatusOr<pb::PublishJsTaskResponse> p = c.PublishJsTask(kGreet);
  REQUIRE(p.ok());
  CHECK(p->task().name() == "greet");
  CHECK(p->task().version() == 1);
  CHECK_FALSE(p->unchanged());
  CHECK(c.PublishJsTask(kGreet)->unchanged());
  REQUIRE(c.PublishJsTask(kGreet, "other").ok());

  absl::StatusOr<std::vector<pb::JsTask>> list = c.ListJsTasks();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].name() == "greet");
  CHECK((*list)[0].code().empty());
  absl::StatusOr<pb::JsTask> got = c.GetJsTask("greet");
  REQUIRE(got.ok());
  CHECK(got->code() == kGreet);
  CHECK(got->params_size() == 1);
  CHECK(c.GetJsTask("greet", 2).status().code() == absl::StatusCode::kNotFound);

  pb::TaskSpec options;
  options.set_priority(pb::PRIORITY_URGENT);
  options.mutable_requirements()->add_required_tags("nowhere");
  options.set_payload(R"({"memory_mb": 32})");
  absl::StatusOr<pb::SubmitResponse> run = c.RunJsTask("greet", R"({"name":"sdk"})", options, 1);
  REQUIRE(run.ok());
  absl::StatusOr<pb::Task> t = c.Get(run->task_id());
  REQUIRE(t.ok());
  CHECK(t->spec().task_type() == "js");
  CHECK(t->spec().priority() == pb::PRIORITY_URGENT);
  json payload = json::parse(t->spec().payload());
  CHECK(payload["memory_mb"] == 32);
  CHECK(payload["input"] == json{{"name", "sdk"}});
  CHECK(payload["code"] == kGreet);

  CHECK(c.RunJsTask("greet", "{oops").status() == absl::InvalidArgumentError("input: not valid JSON"));
  options.set_payload(R"({"name": "x"})");
  CHECK(c.RunJsTask("greet", "{}", options).status() ==
        absl::InvalidArgumentError("options.payload.name: set by RunJsTask's arguments, not in the options"));
  options.set_payload("");
  options.set_task_type("echo");
  CHECK(c.RunJsTask("greet", "{}", options).status().code() == absl::StatusCode::kInvalidArgument);

  SECTION("a task token lists, shows and runs published tasks (as children), but may not publish or remove") {
    FakeWorker worker(cluster.address(), "fake-1", "echo");
    pb::TaskSpec parent;
    parent.set_task_type("echo");
    absl::StatusOr<pb::SubmitResponse> submitted = c.Submit(parent);
    REQUIRE(submitted.ok());
    std::optional<pb::Assignment> a = worker.NextAssignment();
    REQUIRE(a.has_value());
    client::Client task(client::ClientOptions{cluster.address(), absl::Seconds(10), nullptr, a->task_token()});
    CHECK(task.ListJsTasks().ok());
    CHECK(task.GetJsTask("greet").ok());
    absl::StatusOr<pb::SubmitResponse> child = task.RunJsTask("greet", "{}");
    REQUIRE(child.ok());
    CHECK(c.Get(child->task_id())->parent_task_id() == submitted->task_id());
    CHECK(task.PublishJsTask(kGreet, "mine").status().code() == absl::StatusCode::kPermissionDenied);
    CHECK(task.RemoveJsTask("greet").status().code() == absl::StatusCode::kPermissionDenied);
  }

  absl::StatusOr<pb::RemoveJsTaskResponse> removed = c.RemoveJsTask("greet");
  REQUIRE(removed.ok());
  CHECK(removed->removed_versions() == 1);
  CHECK(c.GetJsTask("greet").status().code() == absl::StatusCode::kNotFound);
}

}  // namespace rc::testing
