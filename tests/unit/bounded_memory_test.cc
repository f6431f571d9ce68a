// Bounded coordinator memory: payloads past the budget stay in the store and are read at
// dispatch; finished tasks leave memory and are read back from the store with every
// field; per-owner payload bytes are capped. Run against MemoryTaskStore (the fixture)
// and the real SqliteTaskStore (whose writes commit on their own thread).
#include <catch2/catch.hpp>

#include <filesystem>

#include "absl/synchronization/notification.h"
#include "common/auth.h"
#include "coordinator/api/client_api.h"
#include "coordinator/store/sqlite_task_store.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

using google::protobuf::util::MessageDifferencer;

// The read check the client API applies (core asks it; the API decides).
TaskAccess ReadAccess(Principal who) { return TaskAccessFor(who, ClientOp::kWatchTask); }

// A JSON object payload of `bytes` bytes, distinct per `tag`.
std::string Payload(const std::string& tag, size_t bytes) {
  std::string head = "{\"t\":\"" + tag + "\",\"p\":\"";
  return head + std::string(bytes - head.size() - 2, 'x') + "\"}";
}

pb::TaskSpec Spec(const std::string& payload, const std::string& type = "echo", const std::string& key = "") {
  pb::TaskSpec s;
  s.set_task_type(type);
  s.set_payload(payload);
  s.set_idempotency_key(key);
  return s;
}

// A worker link the loader's thread may call: waits are bounded.
class SafeLink final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    absl::MutexLock lock(&mu_);
    for (const auto& a : m.assignments()) assigned_.push_back(a);
  }
  void Close(absl::Status) override {}
  std::vector<pb::Assignment> WaitAssigned(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return assigned_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return assigned_;
  }

 private:
  absl::Mutex mu_;
  std::vector<pb::Assignment> assigned_ ABSL_GUARDED_BY(mu_);
};

// Records snapshots from any thread.
class SafeSink final : public TaskSink {
 public:
  void OnTask(pb::Task t) override {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(t);
  }
  void Abort(absl::Status) override {}
  std::vector<pb::Task> WaitTasks(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return tasks_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return tasks_;
  }

 private:
  absl::Mutex mu_;
  std::vector<pb::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

// Submits and waits (bounded) for the answer, whichever thread gives it.
absl::StatusOr<SubmitResult> SubmitWait(Coordinator& core, pb::TaskSpec spec, const std::string& owner = "") {
  absl::Notification done;
  absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
  core.Submit(std::move(spec), [&](absl::StatusOr<SubmitResult> r) {
    out = std::move(r);
    done.Notify();
  }, owner);
  REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return out;
}

uint64_t JoinWorker(Coordinator& core, const std::string& device, int slots, std::shared_ptr<WorkerLink> link,
                    const std::vector<std::string>& types = {"echo", "sleep"}) {
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id(device);
  reg.mutable_capabilities()->set_slots(slots);
  reg.mutable_capabilities()->set_platform("linux");
  reg.mutable_capabilities()->set_cpu_cores(2);
  for (const std::string& t : types) reg.mutable_capabilities()->add_task_types(t);
  auto epoch = core.RegisterWorker(reg, std::move(link));
  REQUIRE(epoch.ok());
  return *epoch;
}

// A result with every field a worker reports.
void FinishFull(Coordinator& core, const std::string& device, uint64_t epoch, const pb::Assignment& a,
                pb::TaskStatus status = pb::TASK_STATUS_SUCCESS) {
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(a.task_id());
  f->set_attempt(a.attempt());
  f->set_status(status);
  f->set_result("{\"echo\":" + a.payload() + "}");
  f->set_stdout("out of " + a.task_id());
  f->set_stderr("err");
  f->set_exit_code(3);
  f->set_execution_time_seconds(0.25);
  f->mutable_usage()->set_pid(4242);
  f->mutable_signature()->set_signature("sig-bytes");
  core.HandleWorkerMessage(device, epoch, m);
}

// Ticks until at most `n` tasks are in memory (the store's commits are asynchronous).
void WaitInMemory(Coordinator& core, size_t n) {
  for (int i = 0; i < 2000 && core.tasks_in_memory() > n; ++i) {
    core.Tick();
    absl::SleepFor(absl::Milliseconds(5));
  }
  REQUIRE(core.tasks_in_memory() <= n);
}

CoordinatorOptions Small(int64_t budget, int64_t cache) {
  CoordinatorOptions o = Fixture::Options();
  o.memory_payload_budget_bytes = budget;
  o.finished_cache_tasks = cache;
  return o;
}

std::string TempDir(const std::string& name) {
  std::string dir = (std::filesystem::temp_directory_path() / ("rc-bounded-" + name + "-" + std::to_string(getpid())))
                        .string();
  std::filesystem::remove_all(dir);
  return dir;
}

// A coordinator on a real SQLite store in `dir`.
struct OnDisk {
  OnDisk(const std::string& dir, CoordinatorOptions o) : store(*SqliteTaskStore::Open(dir)), core(o, store.get(), &clock) {}
  ~OnDisk() {
    core.Shutdown();
    store->Close();
  }
  FakeClock clock;
  std::unique_ptr<SqliteTaskStore> store;
  Coordinator core;
};

}  // namespace

TEST_CASE("Payloads past the memory budget stay in the store and are dispatched with the right payload") {
  std::string dir = TempDir("budget");
  OnDisk d(dir, Small(1000, 10000));
  std::vector<std::string> ids, payloads;
  for (int i = 0; i < 4; ++i) {
    payloads.push_back(Payload("task" + std::to_string(i), 600));
    auto r = SubmitWait(d.core, Spec(payloads.back()));
    REQUIRE(r.ok());
    ids.push_back(r->task_id);
  }
  // One 600-byte payload fits the 1000-byte budget; the other three are in the store only.
  CHECK(d.core.payload_bytes_in_memory() == 600);
  // Reads still show every payload.
  for (int i = 0; i < 4; ++i) CHECK(d.core.GetTask(ids[i])->spec().payload() == payloads[i]);
  auto listed = d.core.ListTasks(TaskFilter{});
  REQUIRE(listed->size() == 4);
  CHECK((*listed)[0].spec().payload() == payloads[3]);
  auto sink = std::make_shared<SafeSink>();
  REQUIRE(d.core.Watch(ids[2], sink).ok());
  REQUIRE(sink->WaitTasks(1).size() == 1);
  CHECK(sink->WaitTasks(1)[0].spec().payload() == payloads[2]);

  auto link = std::make_shared<SafeLink>();
  uint64_t epoch = JoinWorker(d.core, "w1", 4, link);
  std::vector<pb::Assignment> got = link->WaitAssigned(4);
  REQUIRE(got.size() == 4);
  std::map<std::string, std::string> by_id;
  for (const auto& a : got) by_id[a.task_id()] = a.payload();
  for (int i = 0; i < 4; ++i) CHECK(by_id[ids[i]] == payloads[i]);
  for (const auto& a : got) FinishFull(d.core, "w1", epoch, a);
  for (int i = 0; i < 4; ++i) {
    pb::Task t = *d.core.GetTask(ids[i]);
    CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
    CHECK(t.result() == "{\"echo\":" + payloads[i] + "}");
    CHECK(t.spec().payload() == payloads[i]);
  }
  CHECK(d.core.payload_bytes_in_memory() <= 1000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("A finished task evicted from memory reads back from the store with every field") {
  std::string dir = TempDir("evict");
  OnDisk d(dir, Small(1 << 20, 0));
  pb::TaskSpec spec = Spec(Payload("full", 200), "echo", "key-1");
  (*spec.mutable_metadata())["team"] = "infra";
  auto r = SubmitWait(d.core, spec, "alice");
  REQUIRE(r.ok());
  auto link = std::make_shared<SafeLink>();
  uint64_t epoch = JoinWorker(d.core, "w1", 1, link);
  REQUIRE(link->WaitAssigned(1).size() == 1);
  FinishFull(d.core, "w1", epoch, link->WaitAssigned(1)[0]);
  pb::Task before = *d.core.GetTask(r->task_id);  // still cached: the write may not be durable yet
  REQUIRE(before.status() == pb::TASK_STATUS_SUCCESS);
  WaitInMemory(d.core, 0);
  pb::Task after = *d.core.GetTask(r->task_id);
  CHECK(MessageDifferencer::Equals(before, after));
  CHECK(after.stdout() == "out of " + r->task_id);
  CHECK(after.signature().signature() == "sig-bytes");
  CHECK(after.attempt_history_size() == 1);
  CHECK(after.spec().metadata().at("team") == "infra");
  CHECK(after.owner() == "alice");

  SECTION("its idempotency key still answers the first task") {
    auto again = SubmitWait(d.core, spec, "alice");
    REQUIRE(again.ok());
    CHECK(again->existing);
    CHECK(again->task_id == r->task_id);
    CHECK(again->status == pb::TASK_STATUS_SUCCESS);
    auto other_owner = SubmitWait(d.core, spec, "bob");  // keys are per submitter
    REQUIRE(other_owner.ok());
    CHECK_FALSE(other_owner->existing);
  }
  SECTION("watch, wait and cancel answer from the store") {
    auto sink = std::make_shared<SafeSink>();
    REQUIRE(d.core.Watch(r->task_id, sink, ReadAccess(Principal{Role::kSubmit, "alice"})).ok());
    REQUIRE(sink->WaitTasks(1).size() == 1);
    CHECK(MessageDifferencer::Equals(sink->WaitTasks(1)[0], before));
    CHECK(d.core.Watch(r->task_id, sink, ReadAccess(Principal{Role::kSubmit, "bob"})).status().code() ==
          absl::StatusCode::kPermissionDenied);
    absl::StatusOr<pb::CancelTaskResponse> c = absl::InternalError("unanswered");
    d.core.Cancel(r->task_id, [&](absl::StatusOr<pb::CancelTaskResponse> x) { c = x; });
    REQUIRE(c.ok());
    CHECK_FALSE(c->cancelled());
    CHECK(c->status() == pb::TASK_STATUS_SUCCESS);
    CHECK(d.core.GetTask("task-unknown").status().code() == absl::StatusCode::kNotFound);
  }
  SECTION("counts per status and type still include it") {
    CHECK(d.core.Stats().tasks().at("success") == 1);
    CHECK(d.core.CountsByType()["echo"]["success"] == 1);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("ListTasks merges cached and stored finished tasks newest first, with every filter") {
  Fixture f(Small(1 << 20, 2));
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(f.Submit(i % 2 == 0 ? "echo" : "sleep"));
    f.Finish("w1", epoch, link->assigned.back(), i == 3 ? pb::TASK_STATUS_TIMEOUT : pb::TASK_STATUS_SUCCESS);
  }
  f.PassBackoff();  // lets the cache trim
  CHECK(f.core.tasks_in_memory() == 2);
  ids.push_back(f.Submit("echo"));  // running on w1
  f.Join("w2", 1, std::make_shared<FakeLink>());
  ids.push_back(f.Submit("echo"));  // running on w2
  ids.push_back(f.Submit("sleep"));  // queued
  auto ids_of = [](const std::vector<pb::Task>& ts) {
    std::vector<std::string> out;
    for (const auto& t : ts) out.push_back(t.task_id());
    return out;
  };
  TaskFilter all;
  CHECK(ids_of(*f.core.ListTasks(all)) ==
        std::vector<std::string>{ids[8], ids[7], ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]});
  TaskFilter limited;
  limited.limit = 5;
  CHECK(ids_of(*f.core.ListTasks(limited)) == std::vector<std::string>{ids[8], ids[7], ids[6], ids[5], ids[4]});
  TaskFilter success;
  success.status = pb::TASK_STATUS_SUCCESS;
  CHECK(ids_of(*f.core.ListTasks(success)) == std::vector<std::string>{ids[5], ids[4], ids[2], ids[1], ids[0]});
  TaskFilter timeout;
  timeout.status = pb::TASK_STATUS_TIMEOUT;
  CHECK(ids_of(*f.core.ListTasks(timeout)) == std::vector<std::string>{ids[3]});
  TaskFilter sleep;
  sleep.task_type = "sleep";
  CHECK(ids_of(*f.core.ListTasks(sleep)) == std::vector<std::string>{ids[8], ids[5], ids[3], ids[1]});
  TaskFilter on_w1;
  on_w1.worker_device_id = "w1";
  on_w1.limit = 3;
  CHECK(ids_of(*f.core.ListTasks(on_w1)) == std::vector<std::string>{ids[6], ids[5], ids[4]});
  TaskFilter someone;
  someone.owner = "nobody";
  CHECK(f.core.ListTasks(someone)->empty());
  CHECK(f.core.Stats().tasks().at("success") == 5);
  CHECK(f.core.Stats().tasks().at("timeout") == 1);
}

TEST_CASE("max_queued_bytes_per_token refuses a named submitter past its payload bytes, naming the key") {
  CoordinatorOptions o = Fixture::Options();
  o.max_unfinished_bytes_per_owner = 1000;
  Fixture f(o);
  REQUIRE(SubmitWait(f.core, Spec(Payload("a", 600)), "alice").ok());
  auto refused = SubmitWait(f.core, Spec(Payload("b", 600)), "alice");
  REQUIRE(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("'alice'") &&
                                                          Catch::Contains("max_queued_bytes_per_token") &&
                                                          Catch::Contains("600 bytes"));
  CHECK(SubmitWait(f.core, Spec(Payload("c", 400)), "alice").ok());  // exactly at the limit
  CHECK(SubmitWait(f.core, Spec(Payload("d", 600)), "bob").ok());    // another submitter
  CHECK(SubmitWait(f.core, Spec(Payload("e", 900)), "").ok());       // the unnamed caller is not limited
  CHECK(SubmitWait(f.core, Spec(Payload("e", 900)), "").ok());
  // A finished task no longer counts.
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  f.Finish("w1", epoch, link->assigned[0]);
  CHECK(SubmitWait(f.core, Spec(Payload("f", 600)), "alice").ok());
}

TEST_CASE("Retention prunes finished tasks kept only in the store, and their counts") {
  Fixture f(Small(1 << 20, 1));
  auto link = std::make_shared<FakeLink>();
  uint64_t epoch = f.Join("w1", 1, link);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(f.Submit("echo"));
    f.Finish("w1", epoch, link->assigned.back());
  }
  f.PassBackoff();
  CHECK(f.core.tasks_in_memory() == 1);
  std::string fresh = f.Submit("echo");  // finishes later: kept
  f.clock.Advance(absl::Hours(24 * 7) + absl::Minutes(1));
  f.Finish("w1", epoch, link->assigned.back());
  f.core.Tick();
  for (const std::string& id : ids) CHECK(f.core.GetTask(id).status().code() == absl::StatusCode::kNotFound);
  CHECK(f.core.GetTask(fresh)->status() == pb::TASK_STATUS_SUCCESS);
  CHECK(f.core.Stats().tasks().at("success") == 1);
  CHECK(f.core.CountsByType()["echo"]["success"] == 1);
  CHECK(f.store.LoadAll()->size() == 1);
}

TEST_CASE("A restart recovers queued tasks with payloads left in the store and counts finished ones") {
  std::string dir = TempDir("restart");
  std::vector<std::string> queued, finished, payloads;
  {
    OnDisk d(dir, Small(1000, 0));
    auto link = std::make_shared<SafeLink>();
    uint64_t epoch = JoinWorker(d.core, "w1", 2, link, {"echo"});  // the sleep tasks stay queued
    for (int i = 0; i < 2; ++i) {
      auto r = SubmitWait(d.core, Spec(Payload("done" + std::to_string(i), 300), "echo", "k" + std::to_string(i)));
      REQUIRE(r.ok());
      finished.push_back(r->task_id);
    }
    for (const auto& a : link->WaitAssigned(2)) FinishFull(d.core, "w1", epoch, a);
    WaitInMemory(d.core, 0);
    for (int i = 0; i < 5; ++i) {
      payloads.push_back(Payload("q" + std::to_string(i), 400));
      auto r = SubmitWait(d.core, Spec(payloads.back(), "sleep"));
      REQUIRE(r.ok());
      queued.push_back(r->task_id);
    }
  }
  OnDisk d(dir, Small(1000, 0));
  REQUIRE(d.core.RecoverFromStore().ok());
  CHECK(d.core.tasks_in_memory() == 5);             // the queued ones only
  CHECK(d.core.payload_bytes_in_memory() == 800);  // two of five payloads fit the budget
  CHECK(d.core.Stats().tasks().at("queued") == 5);
  CHECK(d.core.Stats().tasks().at("success") == 2);
  for (const std::string& id : finished) CHECK(d.core.GetTask(id)->stdout() == "out of " + id);
  auto again = SubmitWait(d.core, Spec(Payload("done0", 300), "echo", "k0"));
  REQUIRE(again.ok());
  CHECK(again->task_id == finished[0]);
  auto fresh = SubmitWait(d.core, Spec(Payload("new", 300)));  // ids and sequence continue
  REQUIRE(fresh.ok());
  CHECK(fresh->task_id > queued.back());
  CHECK(d.core.ListTasks(TaskFilter{})->front().task_id() == fresh->task_id);
  auto link = std::make_shared<SafeLink>();
  JoinWorker(d.core, "w2", 6, link);
  std::vector<pb::Assignment> got = link->WaitAssigned(6);
  REQUIRE(got.size() == 6);
  std::map<std::string, std::string> by_id;
  for (const auto& a : got) by_id[a.task_id()] = a.payload();
  for (size_t i = 0; i < queued.size(); ++i) CHECK(by_id[queued[i]] == payloads[i]);
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator
