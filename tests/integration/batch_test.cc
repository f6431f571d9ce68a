// Batch and async paths of the SDK: SubmitBatch, SubmitAsync, WaitAsync (WaitTasks).
#include <catch2/catch.hpp>

#include <set>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "absl/synchronization/mutex.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

pb::TaskSpec Echo(const std::string& payload) {
  pb::TaskSpec s;
  s.set_task_type("echo");
  s.set_payload(payload);
  return s;
}

// Collects async answers; every wait is bounded.
struct Answers {
  absl::Mutex mu;
  std::vector<absl::StatusOr<pb::Task>> tasks ABSL_GUARDED_BY(mu);
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return tasks.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
  }
  void Add(absl::StatusOr<pb::Task> t) {
    absl::MutexLock lock(&mu);
    tasks.push_back(std::move(t));
  }
};

// Submits an echo and waits until it is done; returns its id.
std::string FinishedEcho(client::Client& c, const std::string& payload) {
  auto r = c.Submit(Echo(payload));
  REQUIRE(r.ok());
  REQUIRE(c.Wait(r->task_id(), absl::Seconds(10)).ok());
  return r->task_id();
}

// SubmitAsync, then WaitAsync on its id: the terminal task (or the error) lands in `answers`.
void SubmitAndWait(client::Client& c, pb::TaskSpec spec, Answers* answers) {
  c.SubmitAsync(std::move(spec), [&c, answers](absl::StatusOr<pb::SubmitResponse> r) {
    if (!r.ok()) return answers->Add(r.status());
    c.WaitAsync(r->task_id(), [answers](absl::StatusOr<pb::Task> t) { answers->Add(std::move(t)); });
  });
}

}  // namespace

TEST_CASE("SubmitBatch answers each spec on its own and a bad one refuses only itself") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w", 2));
  auto& c = cluster.client();
  pb::TaskSpec bad;
  bad.set_task_type("echo");
  bad.set_payload("not json");
  auto r = c.SubmitBatch({Echo(R"({"i":0})"), bad, Echo(R"({"i":2})")});
  REQUIRE(r.ok());
  REQUIRE(r->size() == 3);
  REQUIRE((*r)[0].ok());
  REQUIRE((*r)[2].ok());
  REQUIRE((*r)[1].status().code() == absl::StatusCode::kInvalidArgument);
  CHECK((*r)[1].status().message().find("specs[1].payload") == 0);
  for (int i : {0, 2}) {
    auto t = c.Wait((*r)[i]->task_id(), absl::Seconds(10));
    REQUIRE(t.ok());
    CHECK(t->status() == pb::TASK_STATUS_SUCCESS);
    CHECK(t->result() == absl::StrCat(R"({"i":)", i, "}"));
  }

  SECTION("an empty batch is refused as a whole") {
    auto empty = c.SubmitBatch({});
    REQUIRE(empty.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(empty.status().message().find("specs: a batch holds 1..10000 tasks") != std::string::npos);
  }
}

TEST_CASE("SubmitAsync and WaitAsync carry many tasks and name an unknown id") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 4));
  cluster.AddWorker(Cluster::Worker("w2", 4));
  auto& c = cluster.client();
  constexpr int kTasks = 2000;
  Answers answers;
  for (int i = 0; i < kTasks; ++i) SubmitAndWait(c, Echo(absl::StrCat(R"({"i":)", i, "}")), &answers);
  REQUIRE(answers.WaitFor(kTasks));
  {
    absl::MutexLock lock(&answers.mu);
    std::set<std::string> results;
    for (const auto& t : answers.tasks) {
      REQUIRE(t.ok());
      REQUIRE(t->status() == pb::TASK_STATUS_SUCCESS);
      REQUIRE(t->result() == t->spec().payload());
      results.insert(t->result());
    }
    CHECK(results.size() == kTasks);  // each task answered once, with its own result
  }

  c.WaitAsync("task-0000000000000000", [&answers](absl::StatusOr<pb::Task> t) { answers.Add(std::move(t)); });
  REQUIRE(answers.WaitFor(kTasks + 1));
  absl::MutexLock lock(&answers.mu);
  CHECK(answers.tasks.back().status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("WaitAsync answers a task that already finished, and waits made before a shutdown fail") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w", 1));
  auto& c = cluster.client();
  const std::string done_id = FinishedEcho(c, R"({"x":1})");
  pb::TaskSpec slow;
  slow.set_task_type("sleep");
  slow.set_payload(R"({"duration": 30})");
  auto pending = c.Submit(slow);
  REQUIRE(pending.ok());

  Answers answers;
  auto record = [&answers](absl::StatusOr<pb::Task> t) { answers.Add(std::move(t)); };
  c.WaitAsync(done_id, record);
  REQUIRE(answers.WaitFor(1));
  {
    absl::MutexLock lock(&answers.mu);
    REQUIRE(answers.tasks[0].ok());
    CHECK(answers.tasks[0]->result() == R"({"x":1})");
  }
  c.WaitAsync(pending->task_id(), record);
  cluster.core()->Shutdown();  // aborts every watch
  REQUIRE(answers.WaitFor(2));
  absl::MutexLock lock(&answers.mu);
  CHECK(!answers.tasks[1].ok());
}

TEST_CASE("SubmitAsync keeps batches of large payloads under the message limit") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w", 4));
  auto& c = cluster.client();
  constexpr int kTasks = 1500;  // 1500 x 4 KiB: 6 MiB if sent as one batch
  const std::string fill(4096, 'x');
  Answers answers;
  for (int i = 0; i < kTasks; ++i) {
    SubmitAndWait(c, Echo(absl::StrCat(R"({"i":)", i, R"(,"fill":")", fill, R"("})")), &answers);
  }
  REQUIRE(answers.WaitFor(kTasks));
  absl::MutexLock lock(&answers.mu);
  for (const auto& t : answers.tasks) {
    REQUIRE(t.ok());
    REQUIRE(t->result() == t->spec().payload());
  }
}

TEST_CASE("Waiting twice for the same task answers both waits") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w", 1));
  auto& c = cluster.client();
  const std::string done_id = FinishedEcho(c, R"({"x":1})");
  Answers answers;
  auto record = [&answers](absl::StatusOr<pb::Task> t) { answers.Add(std::move(t)); };
  for (int i = 0; i < 3; ++i) c.WaitAsync(done_id, record);
  REQUIRE(answers.WaitFor(3));
  // And the stream still works afterwards.
  auto next = c.Submit(Echo(R"({"x":2})"));
  REQUIRE(next.ok());
  c.WaitAsync(next->task_id(), record);
  REQUIRE(answers.WaitFor(4));
  absl::MutexLock lock(&answers.mu);
  for (const auto& t : answers.tasks) REQUIRE(t.ok());
  CHECK(answers.tasks[3]->result() == R"({"x":2})");
}

TEST_CASE("WaitTasks sends a task named twice once, and ends after the client's last id") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w", 1));
  auto& c = cluster.client();
  const std::string done_id = FinishedEcho(c, R"({"x":1})");

  auto stub = pb::ClientService::NewStub(
      grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->WaitTasks(&ctx);
  pb::WaitTasksRequest req;
  req.add_task_ids(done_id);
  req.add_task_ids(done_id);
  req.add_task_ids("task-0000000000000000");
  REQUIRE(stream->Write(req));
  REQUIRE(stream->WritesDone());
  int tasks = 0, errors = 0;
  pb::WaitTasksResponse resp;
  while (stream->Read(&resp)) {
    tasks += resp.tasks_size();
    errors += resp.errors_size();
  }
  grpc::Status s = stream->Finish();
  CHECK(s.ok());
  CHECK(tasks == 1);
  CHECK(errors == 1);
}

TEST_CASE("A payload over max_payload_bytes is refused naming the limit, the rest of its batch is not") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.max_payload_bytes = 1024;
  Cluster cluster(config);
  cluster.AddWorker(Cluster::Worker("w", 1));
  auto& c = cluster.client();
  const std::string big = absl::StrCat(R"({"fill":")", std::string(2000, 'x'), R"("})");
  auto one = c.Submit(Echo(big));
  REQUIRE(one.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(one.status().message() == "payload: 2011 bytes, over the limit of 1024 (max_payload_bytes)");
  auto batch = c.SubmitBatch({Echo(R"({"ok":1})"), Echo(big)});
  REQUIRE(batch.ok());
  CHECK((*batch)[0].ok());
  CHECK((*batch)[1].status().message() == "specs[1].payload: 2011 bytes, over the limit of 1024 (max_payload_bytes)");
}

TEST_CASE("Tasks larger than gRPC's 4 MiB default reach the worker and come back") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.max_payload_bytes = 6 << 20;
  Cluster cluster(config);
  cluster.AddWorker(Cluster::Worker("w", 8));
  auto& c = cluster.client();
  // One 5 MiB task, and eight of 1 MiB assigned together (split across messages).
  std::vector<pb::TaskSpec> specs;
  specs.push_back(Echo(absl::StrCat(R"({"fill":")", std::string(5 << 20, 'a'), R"("})")));
  for (int i = 0; i < 8; ++i) specs.push_back(Echo(absl::StrCat(R"({"i":)", i, R"(,"fill":")", std::string(1 << 20, 'b'), R"("})")));
  auto r = c.SubmitBatch(specs);
  REQUIRE(r.ok());
  for (size_t i = 0; i < specs.size(); ++i) {
    REQUIRE((*r)[i].ok());
    auto t = c.Wait((*r)[i]->task_id(), absl::Seconds(30));
    REQUIRE(t.ok());
    REQUIRE(t->status() == pb::TASK_STATUS_SUCCESS);
    CHECK(t->result() == specs[i].payload());
  }
}

}  // namespace rc::testing
