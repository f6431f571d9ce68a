// Refusals through a real cluster (issue 12, item 5): numbers outside a field's range
// named and never truncated (CLI and HTTP JSON), and an unknown status enum over gRPC.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "client/cli.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

struct Run {
  int code;
  std::string out, err;
};

Run Cli(const std::string& address, std::vector<std::string> args) {
  args.insert(args.begin(), {"retire-cluster", "--coordinator", address});
  std::istringstream in;
  std::ostringstream out, err;
  int code = client::RunCli(args, in, out, err);
  return {code, out.str(), err.str()};
}

size_t TaskCount(Cluster& cluster) {
  absl::StatusOr<std::vector<pb::Task>> all = cluster.client().List(pb::ListTasksRequest());
  REQUIRE(all.ok());
  return all->size();
}

}  // namespace

TEST_CASE("CLI: integer flags outside their field's range are refused naming the flag, nothing submitted") {
  Cluster cluster;
  Run r = Cli(cluster.address(), {"submit", "echo", "--max-retries", "4294967301"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --max-retries: must be 0..100, got 4294967301\n");
  r = Cli(cluster.address(), {"submit", "echo", "--min-cpu-cores", "2147483648"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --min-cpu-cores: must be 0..2147483647, got 2147483648\n");
  r = Cli(cluster.address(), {"list", "--limit", "4294967297"});
  CHECK(r.code == client::kExitUsage);
  CHECK(r.err == "error: --limit: must be 1..10000, got 4294967297\n");
  CHECK(TaskCount(cluster) == 0);
  // In range, the value is stored as given.
  r = Cli(cluster.address(), {"submit", "echo", "--max-retries", "5", "--min-cpu-cores", "1", "--json"});
  REQUIRE(r.code == 0);
  absl::StatusOr<pb::Task> t = cluster.client().Get(Json::parse(r.out)["task_id"]);
  REQUIRE(t.ok());
  CHECK(t->spec().requirements().max_retries() == 5);
  CHECK(t->spec().requirements().min_cpu_cores() == 1);
}

TEST_CASE("HTTP: JSON integers outside their field's range are 400 naming the field, never truncated") {
  Cluster cluster;
  httplib::Client http("127.0.0.1", cluster.http_port());
  auto r = http.Post("/tasks", R"({"task_type":"echo","requirements":{"max_retries":4294967301}})",
                     "application/json");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(Json::parse(r->body)["error"] == "requirements.max_retries: must be 0..100, got 4294967301");
  r = http.Post("/tasks", R"({"task_type":"echo","requirements":{"min_cpu_cores":2147483648}})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(Json::parse(r->body)["error"] == "requirements.min_cpu_cores: must be 0..2147483647, got 2147483648");
  CHECK(TaskCount(cluster) == 0);
}

TEST_CASE("gRPC ListTasks with an unknown status value is INVALID_ARGUMENT naming the field") {
  Cluster cluster;
  pb::ListTasksRequest req;
  req.set_status(static_cast<pb::TaskStatus>(42));
  absl::StatusOr<std::vector<pb::Task>> r = cluster.client().List(req);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(r.status().message() == "status: unknown TaskStatus value 42");
  req.set_status(pb::TASK_STATUS_QUEUED);  // a known one still lists
  CHECK(cluster.client().List(req).ok());
}

}  // namespace rc::testing
