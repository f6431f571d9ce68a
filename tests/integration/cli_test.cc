// The CLIs in-process against a real cluster: output shapes, exit codes, errors.
#include <catch2/catch.hpp>
#include <sstream>

#include "client/cli.h"
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

}  // namespace rc::testing
