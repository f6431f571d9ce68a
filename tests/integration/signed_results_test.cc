// Signed results through a real cluster: every outcome a worker reports carries its
// signature and the key recorded at join; `retire-cluster verify` accepts the stored
// outcome and refuses a tampered one, another key, a pin that differs, and outcomes the
// coordinator decided itself.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/verify.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "common/result_signature.h"
#include "common/task_names.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

// A worker with a data dir (and so a key) of its own, removed with the test.
struct KeyDir {
  std::string path = (std::filesystem::temp_directory_path() / NewId("rc-signed-worker")).string();
  ~KeyDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

pb::Task Finish(Cluster& cluster, pb::TaskSpec spec) {
  absl::StatusOr<pb::SubmitResponse> r = cluster.client().Submit(spec);
  REQUIRE(r.ok());
  absl::StatusOr<pb::Task> t = cluster.client().Wait(r->task_id(), absl::Seconds(20));
  REQUIRE(t.ok());
  return *t;
}

pb::TaskSpec Spec(const std::string& type, const std::string& payload) {
  pb::TaskSpec spec;
  spec.set_task_type(type);
  spec.set_payload(payload);
  return spec;
}

}  // namespace

TEST_CASE("A worker's result is signed with the key recorded at join and verify checks it") {
  Cluster cluster;
  KeyDir dir;
  WorkerConfig wc = Cluster::Worker("signer", 2);
  wc.data_dir = dir.path;
  worker::Worker* w = cluster.AddWorker(wc);
  const std::string key = w->capabilities().public_key();
  REQUIRE(key.size() == 32);
  // The coordinator lists the key the worker registered.
  REQUIRE(cluster.core()->ListWorkers("signer").at(0).capabilities().public_key() == key);

  pb::Task t = Finish(cluster, Spec("echo", R"({"message":"signed"})"));
  REQUIRE(t.status() == pb::TASK_STATUS_SUCCESS);
  CHECK(t.signature().worker_device_id() == "signer");
  CHECK(t.signature().attempt() == 1);
  CHECK(t.signature().public_key() == key);
  CHECK(t.signature().signature().size() == 64);

  Run r = Cli(cluster.address(), {"verify", t.task_id()});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("verified: signed by signer at 20"));
  r = Cli(cluster.address(), {"verify", t.task_id(), "--json", "--public-key", absl::Base64Escape(key)});
  REQUIRE(r.code == 0);
  Json j = Json::parse(r.out);
  CHECK(j["verified"] == true);
  CHECK(j["worker_device_id"] == "signer");
  CHECK(j["public_key"] == PublicKeyHex(key));
  CHECK(j["result_digest"] == OutcomeDigest(OutcomeOf(t)));

  // A pin that differs fails, naming both keys.
  absl::StatusOr<Ed25519Key> other = Ed25519Key::Generate();
  REQUIRE(other.ok());
  r = Cli(cluster.address(), {"verify", t.task_id(), "--public-key", PublicKeyHex(other->public_key())});
  CHECK(r.code == client::kExitTaskFailed);
  CHECK_THAT(r.err, Catch::Contains("not the pinned key " + PublicKeyHex(other->public_key())));
  r = Cli(cluster.address(), {"verify", t.task_id(), "--public-key", "nope"});
  CHECK(r.code == client::kExitUsage);
  CHECK_THAT(r.err, Catch::Contains("--public-key"));
  r = Cli(cluster.address(), {"verify", "task-0000000000000000"});
  CHECK(r.code == client::kExitNotFound);

  // Tampered copies of the stored task (what a compromised coordinator or database would
  // serve) fail with the reason.
  pb::Task tampered = t;
  tampered.set_result(R"({"message":"forged"})");
  absl::StatusOr<client::VerifiedResult> v = client::VerifyTask(tampered, nullptr, std::nullopt);
  CHECK(v.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(v.status().message()), Catch::Contains("result digest does not match the stored result"));
  tampered = t;
  tampered.mutable_signature()->set_public_key(other->public_key());
  v = client::VerifyTask(tampered, nullptr, std::nullopt);
  CHECK(v.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(v.status().message()), Catch::Contains("signature does not match public key"));
  tampered = t;
  tampered.set_attempts(2);
  CHECK(client::VerifyTask(tampered, nullptr, std::nullopt).status().code() == absl::StatusCode::kInvalidArgument);
  // A worker presenting another key now than the one recorded for the result.
  pb::Worker now = cluster.core()->ListWorkers("signer").at(0);
  CHECK(client::VerifyTask(t, &now, std::nullopt).ok());
  now.mutable_capabilities()->set_public_key(other->public_key());
  v = client::VerifyTask(t, &now, std::nullopt);
  CHECK(v.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(v.status().message()), Catch::Contains("now presents key"));
}

TEST_CASE("Failed and timed-out outcomes verify and coordinator-decided ones have no signature") {
  Cluster cluster;
  KeyDir dir;
  WorkerConfig wc = Cluster::Worker("signer", 2);
  wc.data_dir = dir.path;
  wc.allow = {"http_request"};
  cluster.AddWorker(wc);

  // Nothing listens on port 1: no response is a failure, retried once, then failed for
  // good with the coordinator's note appended to the worker's error message.
  pb::TaskSpec failing = Spec("http_request", R"({"url":"http://127.0.0.1:1/","timeout":2})");
  failing.mutable_requirements()->set_max_retries(1);
  pb::Task failed = Finish(cluster, failing);
  REQUIRE(failed.status() == pb::TASK_STATUS_FAILED);
  CHECK_THAT(failed.error_message(), Catch::EndsWith("(attempt 2 of 2; no retries left)"));
  CHECK(failed.signature().attempt() == 2);
  Run r = Cli(cluster.address(), {"verify", failed.task_id()});
  INFO(r.err);
  CHECK(r.code == 0);
  // The note is the coordinator's; the worker's own message is covered.
  pb::Task forged = failed;
  forged.set_error_message("forged (attempt 2 of 2; no retries left)");
  CHECK(client::VerifyTask(forged, nullptr, std::nullopt).status().code() == absl::StatusCode::kDataLoss);

  pb::TaskSpec slow = Spec("sleep", R"({"duration":30})");
  slow.mutable_requirements()->set_timeout_seconds(0.2);
  pb::Task timed_out = Finish(cluster, slow);
  REQUIRE(timed_out.status() == pb::TASK_STATUS_TIMEOUT);
  r = Cli(cluster.address(), {"verify", timed_out.task_id()});
  CHECK(r.code == 0);

  absl::StatusOr<pb::SubmitResponse> running = cluster.client().Submit(Spec("sleep", R"({"duration":30})"));
  REQUIRE(running.ok());
  REQUIRE(Eventually([&] {
    auto t = cluster.client().Get(running->task_id());
    return t.ok() && t->status() == pb::TASK_STATUS_RUNNING;
  }));
  r = Cli(cluster.address(), {"verify", running->task_id()});
  CHECK(r.code == client::kExitTaskFailed);
  CHECK_THAT(r.err, Catch::Contains("is not finished (running)"));
  REQUIRE(cluster.client().Cancel(running->task_id()).ok());
  r = Cli(cluster.address(), {"verify", running->task_id(), "--json"});
  CHECK(r.code == client::kExitTaskFailed);
  CHECK(Json::parse(r.out)["verified"] == false);
  CHECK_THAT(r.err, Catch::Contains("has no signature"));
}

TEST_CASE("Results signed in one batch each verify alone and one's proof does not serve another") {
  Cluster cluster;
  KeyDir dir;
  // Queued before the worker joins, instant echo tasks arrive together and run on the
  // stream's reader, which sends their results in one message: one signed batch. The
  // rounds bound the (unlikely) case of every result leaving in a message of its own.
  std::vector<pb::Task> tasks;
  worker::Worker* w = nullptr;
  WorkerConfig wc = Cluster::Worker("batcher", 16);
  wc.data_dir = dir.path;
  uint32_t largest = 0;
  for (int round = 0; round < 3 && largest < 2; ++round) {
    std::vector<std::string> ids;
    for (int i = 0; i < 12; ++i) {
      absl::StatusOr<pb::SubmitResponse> r = cluster.client().Submit(Spec("echo", absl::StrCat(R"({"n":)", i, "}")));
      REQUIRE(r.ok());
      ids.push_back(r->task_id());
    }
    if (w == nullptr) w = cluster.AddWorker(wc);
    for (const std::string& id : ids) {
      absl::StatusOr<pb::Task> t = cluster.client().Wait(id, absl::Seconds(20));
      REQUIRE(t.ok());
      REQUIRE(t->status() == pb::TASK_STATUS_SUCCESS);
      largest = std::max(largest, t->signature().batch_size());
      tasks.push_back(*t);
    }
    if (largest < 2) {
      cluster.StopWorker(w);
      w = nullptr;
    }
  }
  REQUIRE(largest >= 2);
  // Every result verifies alone, through the CLI and with nothing but its own record.
  std::map<std::string, std::vector<const pb::Task*>> by_root;
  for (const pb::Task& t : tasks) {
    const pb::ResultSignature& sig = t.signature();
    REQUIRE(sig.batch_size() >= 1);
    CHECK(sig.leaf_index() < sig.batch_size());
    by_root[sig.batch_root()].push_back(&t);
    Run r = Cli(cluster.address(), {"verify", t.task_id(), "--json"});
    INFO(t.task_id() << ": " << r.err);
    CHECK(r.code == 0);
    Json j = Json::parse(r.out);
    CHECK(j["verified"] == true);
    CHECK(j["batch_size"] == sig.batch_size());
    CHECK(j["leaf_index"] == sig.leaf_index());
    CHECK(j["batch_root"] == absl::BytesToHexString(sig.batch_root()));
    CHECK(client::VerifyTask(t, nullptr, std::nullopt).ok());
  }
  // A batch is one signature; its members sit at distinct places; and the proof of one
  // member does not verify another.
  bool crossed = false;
  for (const auto& [root, members] : by_root) {
    std::set<uint32_t> places;
    for (const pb::Task* t : members) {
      CHECK(t->signature().signature() == members[0]->signature().signature());
      CHECK(t->signature().batch_size() == members[0]->signature().batch_size());
      places.insert(t->signature().leaf_index());
    }
    CHECK(places.size() == members.size());
    if (members.size() < 2) continue;
    pb::Task swapped = *members[0];
    *swapped.mutable_signature()->mutable_proof() = members[1]->signature().proof();
    swapped.mutable_signature()->set_leaf_index(members[1]->signature().leaf_index());
    absl::Status s = client::VerifyTask(swapped, nullptr, std::nullopt).status();
    CHECK(s.code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(s.message()), Catch::Contains("inclusion proof does not lead to the signed batch root"));
    crossed = true;
  }
  CHECK(crossed);
  // The JSON view shows the batch fields.
  const pb::Task& t = tasks[0];
  Json view = TaskToJson(t);
  CHECK(view["signature"]["batch_size"] == t.signature().batch_size());
  CHECK(view["signature"]["leaf_index"] == t.signature().leaf_index());
  CHECK(view["signature"]["batch_root"] == absl::BytesToHexString(t.signature().batch_root()));
  REQUIRE(view["signature"]["proof"].size() == static_cast<size_t>(t.signature().proof_size()));
  for (int i = 0; i < t.signature().proof_size(); ++i) {
    CHECK(view["signature"]["proof"][i] == absl::BytesToHexString(t.signature().proof(i)));
  }
}

TEST_CASE("A worker keeps its key across restarts on one data dir and a new key fails older results") {
  Cluster cluster;
  KeyDir dir, other_dir;
  WorkerConfig wc = Cluster::Worker("signer", 1);
  wc.data_dir = dir.path;
  worker::Worker* first = cluster.AddWorker(wc);
  const std::string key = first->capabilities().public_key();
  pb::Task t = Finish(cluster, Spec("echo", R"({"n":1})"));
  cluster.StopWorker(first);

  worker::Worker* again = cluster.AddWorker(wc);
  CHECK(again->capabilities().public_key() == key);
  CHECK(Cli(cluster.address(), {"verify", t.task_id()}).code == 0);
  cluster.StopWorker(again);

  // Same device id, another data dir: another key, so results signed before do not
  // match what the worker presents now.
  wc.data_dir = other_dir.path;
  worker::Worker* imposter = cluster.AddWorker(wc);
  REQUIRE(imposter->capabilities().public_key() != key);
  Run r = Cli(cluster.address(), {"verify", t.task_id()});
  CHECK(r.code == client::kExitTaskFailed);
  CHECK_THAT(r.err, Catch::Contains("worker signer now presents key " +
                                    PublicKeyHex(imposter->capabilities().public_key())));
}

}  // namespace rc::testing
