// Refusals through a real cluster (issue 12, item 5): numbers outside a field's range
// named and never truncated (CLI and HTTP JSON), an unknown status enum over gRPC, and
// a payload the handler refuses failing at once, signed, without retries.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "client/cli.h"
#include "client/verify.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "common/result_signature.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

size_t TaskCount(Cluster& cluster) {
  absl::StatusOr<std::vector<pb::Task>> all = cluster.client().List(pb::ListTasksRequest());
  REQUIRE(all.ok());
  return all->size();
}

// A directory removed with the test.
struct TempDir {
  std::string path = (std::filesystem::temp_directory_path() / NewId("rc-refusals")).string();
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

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

TEST_CASE("A node_task path outside the task root fails at once: one attempt, signed permanent, verifiable") {
  Cluster cluster;
  TempDir root, data;
  WorkerConfig wc = Cluster::Worker("w1", 1);
  wc.allow = {"node_task"};
  wc.node_task_root = root.path;
  wc.data_dir = data.path;  // a key of its own: the outcome is signed
  cluster.AddWorker(wc);

  pb::TaskSpec spec;
  spec.set_task_type("node_task");
  spec.set_payload(R"({"task_path":"../../etc"})");
  spec.mutable_requirements()->set_max_retries(3);
  absl::StatusOr<pb::SubmitResponse> submitted = cluster.client().Submit(spec);
  REQUIRE(submitted.ok());
  absl::StatusOr<pb::Task> t = cluster.client().Wait(submitted->task_id(), absl::Seconds(20));
  REQUIRE(t.ok());
  CHECK(t->status() == pb::TASK_STATUS_FAILED);
  CHECK(t->attempts() == 1);
  CHECK(t->attempt_history_size() == 1);
  CHECK_THAT(t->error_message(), Catch::StartsWith("payload.task_path: '../../etc' is outside the node task root"));
  CHECK(t->signature().permanent());
  absl::StatusOr<client::VerifiedResult> v = client::VerifyTask(*t, nullptr, std::nullopt);
  INFO(v.status().message());
  CHECK(v.ok());
  // The coordinator (or its database) cannot drop the worker's claim.
  pb::Task dropped = *t;
  dropped.mutable_signature()->set_permanent(false);
  CHECK_FALSE(client::VerifyTask(dropped, nullptr, std::nullopt).ok());
}

TEST_CASE("verify refuses a failure the worker did not sign permanent that ended with retries left") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  pb::TaskFinished f;
  f.set_task_id("t1");
  f.set_attempt(1);
  f.set_status(pb::TASK_STATUS_FAILED);
  f.set_error_message("connection refused");
  auto stored = [&](const pb::TaskFinished& fin, const std::string& error_message) {
    absl::StatusOr<pb::ResultSignature> sig = SignOutcome(*key, fin, "w1", 1700000000000);
    REQUIRE(sig.ok());
    pb::Task t;
    t.set_task_id("t1");
    t.set_status(pb::TASK_STATUS_FAILED);
    t.set_error_message(error_message);
    t.set_attempts(1);
    t.set_worker_device_id("w1");
    *t.mutable_signature() = *sig;
    t.mutable_signature()->set_public_key(key->public_key());
    return t;
  };
  // Stopped by the coordinator after attempt 1 of 4 although the worker did not say so.
  absl::Status s = client::VerifyTask(stored(f, "connection refused"), nullptr, std::nullopt).status();
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message() ==
        "task t1: failed at attempt 1 with retries left, but the worker did not sign the failure permanent");
  // With its retries used up (the coordinator's note), or signed permanent, it verifies.
  CHECK(client::VerifyTask(stored(f, "connection refused (attempt 1 of 1; no retries left)"), nullptr, std::nullopt)
            .ok());
  f.set_permanent(true);
  CHECK(client::VerifyTask(stored(f, "connection refused"), nullptr, std::nullopt).ok());
}

}  // namespace rc::testing
