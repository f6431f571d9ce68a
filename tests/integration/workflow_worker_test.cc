// Workflows through the real worker (DESIGN.md "Workflows"): a `command` task runs the
// real `retire-cluster submit ... --wait` against $RETIRE_CLUSTER_COORDINATOR (its
// worker's socket), on a worker with one slot, two levels deep; the waiting parents lend
// their slot, so the chain ends instead of deadlocking.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {

TEST_CASE("workflows: a three-level chain of command tasks submitting with the CLI ends on one slot",
          "[workflows]") {
  Cluster cluster;
  WorkerConfig w = Cluster::Worker("chain-w1", 1);
  w.allow = {"command"};
  cluster.AddWorker(w);
  const std::string cli = RC_CLI_BINARY;
  // grandchild: echo; child: submits it and waits; parent: submits the child and waits
  // (argv, so that no shell quoting stands between the levels).
  const nlohmann::json child_payload = {
      {"argv", {cli, "submit", "echo", "--payload", R"({"level":2})", "--wait", "--json"}}};
  const nlohmann::json parent_payload = {
      {"argv", {cli, "submit", "command", "--payload", child_payload.dump(), "--wait", "--json"}}};
  pb::TaskSpec spec;
  spec.set_task_type("command");
  spec.set_payload(parent_payload.dump());
  spec.mutable_requirements()->set_timeout_seconds(60);
  auto submitted = cluster.client().Submit(spec);
  REQUIRE(submitted.ok());
  auto done = cluster.client().Wait(submitted->task_id(), absl::Seconds(60));
  REQUIRE(done.ok());
  INFO(done->stdout() << done->stderr() << done->error_message());
  CHECK(done->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(absl::StrContains(done->stdout(), "\\\"level\\\":2"));  // the grandchild's result, in the child's output
  // The child is recorded as the parent's, at depth 1.
  pb::ListTasksRequest list;
  list.set_parent_task_id(submitted->task_id());
  auto children = cluster.client().List(list);
  REQUIRE(children.ok());
  REQUIRE(children->size() == 1);
  CHECK((*children)[0].depth() == 1);
  CHECK((*children)[0].status() == pb::TASK_STATUS_SUCCESS);
}

}  // namespace rc::testing
