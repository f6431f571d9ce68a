// The CLIs in-process against a real cluster: output shapes, exit codes, errors.
#include <catch2/catch.hpp>
#include <sstream>

#include "client/cli.h"
#include "client/workflow_cli.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
TEST_CASE("submit --wait --json prints the task object and exits 0 only on success") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2, {"ssd"}));
  Run r = Cli(cluster.address(), {"submit", "echo", "--payload", R"({"message":"hi"})", "--priority", "high",
                                  "--tag", "ssd", "--metadata", "owner=me", "--wait", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  Json t = Json::parse(r.out);
  CHECK(t["status"] == "success");
  CHECK(t["result"]["message"] == "hi");
  CHECK(t["priority"] == "high");
  CHECK(t["metadata"]["owner"] == "me");
  CHECK(t["worker_device_id"] == "w1");
  CHECK(t["requirements"]["required_tags"][0] == "ssd");

  r = Cli(cluster.address(), {"submit", "sleep", "--payload", R"({"duration":5})", "--timeout", "0.2", "--wait"});
  CHECK(r.code == client::kExitTaskFailed);
  CHECK_THAT(r.out, Catch::Contains("timeout"));

  r = Cli(cluster.address(), {"submit", "echo", "--payload", "-", "--json"}, R"({"from":"stdin"})");
  REQUIRE(r.code == 0);
  Json s = Json::parse(r.out);
  CHECK(s.size() == 2);
  std::string id = s["task_id"];
  r = Cli(cluster.address(), {"wait", id, "--timeout", "10", "--json"});
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out)["result"]["from"] == "stdin");

  r = Cli(cluster.address(), {"get", id});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("status:                success"));
}

TEST_CASE("Bad input exits non-zero naming the problem, and the cluster keeps working") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  const std::string a = cluster.address();
  Run r = Cli(a, {"submit", "echo", "--payload", "{not json"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("error: --payload is not valid JSON"));
  r = Cli(a, {"submit", "echo", "--priority", "asap"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --priority: unknown priority 'asap' (expected low, normal, high or urgent)\n");
  r = Cli(a, {"submit", "echo", "--timeout", "-5"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: requirements.timeout_seconds: must be greater than 0, got -5\n");
  r = Cli(a, {"submit", "echo", "--payload", "@/nonexistent/payload.json"});
  CHECK(r.code != 0);
  CHECK_THAT(r.err, Catch::Contains("/nonexistent/payload.json"));
  r = Cli(a, {"get", "task-0000"});
  CHECK(r.code == client::kExitNotFound);
  CHECK(r.err == "error: no task with id 'task-0000'\n");
  r = Cli(a, {"cancel", "task-0000"});
  CHECK(r.code == client::kExitNotFound);
  r = Cli(a, {"list", "--status", "done"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("--status: unknown status 'done'"));
  r = Cli(a, {"frobnicate"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("unknown command 'frobnicate'"));
  r = Cli(a, {"submit", "echo", "--bogus"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("unknown flag --bogus"));

  r = Cli("127.0.0.1:1", {"stats"});
  CHECK(r.code == client::kExitUnavailable);
  CHECK_THAT(r.err, Catch::StartsWith("error: cannot reach coordinator at 127.0.0.1:1"));

  r = Cli(a, {"submit", "echo", "--payload", R"({"still":"working"})", "--wait", "--json"});
  CHECK(r.code == 0);
}

TEST_CASE("list, workers, stats and retire-cluster-status print the documented JSON shapes") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2, {"x"}, "compute"));
  const std::string a = cluster.address();
  REQUIRE(Cli(a, {"submit", "echo", "--wait"}).code == 0);
  REQUIRE(Cli(a, {"submit", "echo", "--wait"}).code == 0);

  Run r = Cli(a, {"list", "--json", "--limit", "1"});
  REQUIRE(r.code == 0);
  Json list = Json::parse(r.out);
  CHECK(list["tasks"].size() == 1);
  r = Cli(a, {"list", "--status", "success"});
  CHECK_THAT(r.out, Catch::StartsWith("TASK_ID"));

  r = Cli(a, {"workers", "--json"});
  REQUIRE(r.code == 0);
  Json w = Json::parse(r.out)["workers"][0];
  for (const char* key : {"device_id", "hostname", "status", "role", "platform", "arch", "cpu_cores", "memory_gb",
                          "storage_gb", "gpu", "internet", "tags", "task_types", "slots", "running", "load",
                          "last_heartbeat", "version"}) {
    INFO(key);
    CHECK(w.contains(key));
  }
  CHECK(w["role"] == "compute");
  CHECK(w["status"] == "online");

  r = Cli(a, {"stats", "--json"});
  REQUIRE(r.code == 0);
  Json s = Json::parse(r.out);
  CHECK(s["tasks_succeeded"] == 2);
  CHECK(s["online_devices"] == 1);
  CHECK(s["tasks"]["success"] == 2);
  CHECK(s["queued_by_priority"]["urgent"] == 0);

  std::ostringstream out, err;
  int code = client::RunStatusCli({"retire-cluster-status", a, "--devices", "--json"}, out, err);
  REQUIRE(code == 0);
  Json st = Json::parse(out.str());
  CHECK(st["stats"]["total_slots"] == 2);
  CHECK(st["devices"][0]["device_id"] == "w1");

  std::ostringstream out2, err2;
  CHECK(client::RunStatusCli({"retire-cluster-status", a, "--device", "nope"}, out2, err2) == client::kExitNotFound);
  CHECK(err2.str() == "error: no worker with device id 'nope'\n");
}

// Issue 14: what works on any coordinator (the flags' parsing, `tree` of a task without
// children, the environment and unix: targets). Children, dependencies and task tokens
// end to end: tests/e2e/workflow_test.sh.
TEST_CASE("submit --after and --parent-close: bad values exit 2 naming the flag") {
  Cluster cluster;
  const std::string a = cluster.address();
  Run r = Cli(a, {"submit", "echo", "--after", "task-1:maybe"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --after task-1:maybe: expected ok, any or notok, got 'maybe'\n");
  r = Cli(a, {"submit", "echo", "--after", ":ok"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --after: expected ID[:ok|any|notok], got ':ok'\n");
  r = Cli(a, {"submit", "echo", "--parent-close", "never"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --parent-close: expected cancel or abandon, got 'never'\n");
  r = Cli(a, {"list", "--parent"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("--parent"));
  r = Cli(a, {"tree"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: tree: expected one task id\n");
  r = Cli(a, {"tree", "task-x", "--limit", "0"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("--limit: must be 1..10000, got 0"));
  r = Cli(a, {"--help"});
  for (const char* flag : {"--after ID[:ok|any|notok]", "--parent-close cancel|abandon", "--parent ID", "tree ID",
                           "RETIRE_CLUSTER_COORDINATOR", "unix:PATH"}) {
    INFO(flag);
    CHECK_THAT(r.out, Catch::Contains(flag));
  }
}

TEST_CASE("CLI: --after parses ID with an optional ok or any or notok and repeats") {
  for (auto [text, id, condition] : {std::tuple{"task-1", "task-1", pb::DEPENDENCY_CONDITION_OK},
                                     std::tuple{"task-1:ok", "task-1", pb::DEPENDENCY_CONDITION_OK},
                                     std::tuple{"task-2:any", "task-2", pb::DEPENDENCY_CONDITION_ANY},
                                     std::tuple{"task-3:notok", "task-3", pb::DEPENDENCY_CONDITION_NOTOK}}) {
    INFO(text);
    absl::StatusOr<pb::Dependency> d = client::ParseAfterFlag(text);
    REQUIRE(d.ok());
    CHECK(d->task_id() == id);
    CHECK(d->condition() == condition);
  }
  std::vector<std::string> args = {"retire-cluster", "--after", "a", "--after", "b:notok", "--parent-close", "abandon"};
  absl::StatusOr<ParsedFlags> f =
      ParseFlags(args, 1, {{"after", "ID", "", true}, {"parent-close", "P", ""}});
  REQUIRE(f.ok());
  pb::TaskSpec spec;
  REQUIRE(client::ApplyWorkflowFlags(*f, &spec).ok());
  REQUIRE(spec.after_size() == 2);
  CHECK(spec.after(1).task_id() == "b");
  CHECK(spec.after(1).condition() == pb::DEPENDENCY_CONDITION_NOTOK);
  CHECK(spec.parent_close() == pb::PARENT_CLOSE_ABANDON);
}

TEST_CASE("tree prints a fetched tree indented with statuses and --json nests it") {
  auto task = [](const std::string& id, pb::TaskStatus s, const std::string& type) {
    pb::Task t;
    t.set_task_id(id);
    t.set_status(s);
    t.mutable_spec()->set_task_type(type);
    return t;
  };
  client::TaskTree root{task("task-a", pb::TASK_STATUS_RUNNING, "command"), {}, false};
  root.children.push_back({task("task-b", pb::TASK_STATUS_SUCCESS, "echo"), {}, false});
  client::TaskTree c{task("task-c", pb::TASK_STATUS_PENDING, "echo"), {}, true};
  c.task.add_waiting_for("task-b");
  c.task.add_waiting_for("task-d");
  c.children.push_back({task("task-e", pb::TASK_STATUS_CANCELLED, "sleep"), {}, false});
  c.children[0].task.set_error_message("parent task-c ended");
  root.children.push_back(std::move(c));
  CHECK(client::FormatTree(root) ==
        "task-a  running  command\n"
        "  task-b  success  echo\n"
        "  task-c  pending  echo  waiting for task-b, task-d\n"
        "    task-e  cancelled  sleep  error: parent task-c ended\n"
        "    ... more children not shown\n");
  Json j = client::TreeToJson(root);
  CHECK(j["task_id"] == "task-a");
  CHECK(j["children"].size() == 2);
  CHECK(j["children"][0]["children"].empty());
  CHECK(j["children"][1]["children"][0]["status"] == "cancelled");
  CHECK(j["children"][1]["children_truncated"] == true);
  CHECK_FALSE(j.contains("children_truncated"));
}

TEST_CASE("tree of a task without children on a live cluster and unknown ids exit 3") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  const std::string a = cluster.address();
  Run r = Cli(a, {"submit", "echo", "--wait", "--json"});
  REQUIRE(r.code == 0);
  const std::string id = Json::parse(r.out)["task_id"];
  r = Cli(a, {"tree", id});
  CHECK(r.code == 0);
  CHECK(r.out == id + "  success  echo\n");
  r = Cli(a, {"tree", id, "--json"});
  REQUIRE(r.code == 0);
  Json t = Json::parse(r.out);
  CHECK(t["task_id"] == id);
  CHECK(t["depth"] == 0);
  CHECK(t["children"].empty());
  r = Cli(a, {"tree", "task-0000"});
  CHECK(r.code == client::kExitNotFound);
  CHECK(r.err == "error: no task with id 'task-0000'\n");
}

TEST_CASE("The CLI reads RETIRE_CLUSTER_COORDINATOR and accepts unix:PATH targets") {
  Cluster cluster;
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), "retire-cluster");
    std::istringstream in;
    std::ostringstream out, err;
    int code = client::RunCli(args, in, out, err);
    return Run{code, out.str(), err.str()};
  };
  setenv("RETIRE_CLUSTER_COORDINATOR", cluster.address().c_str(), 1);
  Run r = run({"stats", "--json"});
  CHECK(r.code == 0);
  CHECK(client::ClientOptionsFromEnvironment().target == cluster.address());
  setenv("RETIRE_CLUSTER_COORDINATOR", "unix:/nonexistent/rc.sock", 1);
  r = run({"stats"});
  CHECK(r.code == client::kExitUnavailable);
  CHECK_THAT(r.err, Catch::StartsWith("error: cannot reach coordinator at unix:/nonexistent/rc.sock"));
  setenv("RETIRE_CLUSTER_COORDINATOR", "unix:", 1);
  r = run({"stats"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("coordinator: expected unix:PATH"));
  unsetenv("RETIRE_CLUSTER_COORDINATOR");
  setenv("RETIRE_CLUSTER_TASK_ID", "task-123", 1);
  CHECK(client::CurrentTaskId() == "task-123");
  unsetenv("RETIRE_CLUSTER_TASK_ID");
  CHECK(client::CurrentTaskId().empty());
}

}  // namespace rc::testing
