// Answers that promise durability wait for the store's commit: a store that commits
// only when the test says so.
#include <catch2/catch.hpp>

#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

class ManualStore final : public TaskStore {
 public:
  void Write(std::vector<TaskRecord> tasks, std::function<void(absl::Status)> done) override {
    for (auto& t : tasks) log.push_back(*ParseRecord(t));
    pending.push_back(std::move(done));
  }
  void Delete(std::vector<std::string>, std::function<void(absl::Status)> done) override { done(absl::OkStatus()); }
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override { return log; }
  // Completes every write so far with `status`.
  void Commit(absl::Status status = absl::OkStatus()) {
    auto now = std::move(pending);
    pending.clear();
    for (auto& done : now) done(status);
  }
  std::vector<pb::Task> log;  // every record written, in order
  std::vector<std::function<void(absl::Status)>> pending;
};

struct Manual {
  FakeClock clock;
  ManualStore store;
  Coordinator core{Fixture::Options(), &store, &clock};
};

pb::TaskSpec Echo(const std::string& key = "") {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  spec.set_idempotency_key(key);
  return spec;
}

}  // namespace

TEST_CASE("Submit answers only after the commit, a failed commit forgets the task") {
  Manual m;
  std::optional<absl::StatusOr<SubmitResult>> answer;
  m.core.Submit(Echo(), [&](absl::StatusOr<SubmitResult> r) { answer = r; });
  CHECK_FALSE(answer.has_value());
  m.store.Commit();
  REQUIRE(answer.has_value());
  REQUIRE(answer->ok());
  CHECK((*answer)->status == pb::TASK_STATUS_QUEUED);

  std::optional<absl::StatusOr<SubmitResult>> failed;
  m.core.Submit(Echo(), [&](absl::StatusOr<SubmitResult> r) { failed = r; });
  m.store.Commit(absl::UnavailableError("disk full"));
  REQUIRE(failed.has_value());
  CHECK(failed->status().code() == absl::StatusCode::kUnavailable);
  CHECK(m.core.ListTasks(TaskFilter{})->size() == 1);
}

TEST_CASE("A repeated idempotency key waits for the first task's commit, then gets its id") {
  Manual m;
  std::string first, second;
  bool existing = false;
  m.core.Submit(Echo("k"), [&](absl::StatusOr<SubmitResult> r) { first = r->task_id; });
  m.core.Submit(Echo("k"), [&](absl::StatusOr<SubmitResult> r) {
    second = r->task_id;
    existing = r->existing;
  });
  CHECK(second.empty());
  m.store.Commit();
  CHECK_FALSE(first.empty());
  CHECK(second == first);
  CHECK(existing);
}

TEST_CASE("Cancel answers after its record is stored, and the stored record is the cancelled one") {
  Manual m;
  std::string id;
  m.core.Submit(Echo(), [&](absl::StatusOr<SubmitResult> r) { id = r->task_id; });
  std::string pending_id = m.store.log.back().task_id();
  std::optional<absl::StatusOr<pb::CancelTaskResponse>> answer;
  m.core.Cancel(pending_id, [&](absl::StatusOr<pb::CancelTaskResponse> r) { answer = r; });
  CHECK_FALSE(answer.has_value());
  m.store.Commit();
  REQUIRE(answer.has_value());
  CHECK((*answer)->cancelled());
  CHECK(m.store.log.back().status() == pb::TASK_STATUS_CANCELLED);  // written after PENDING
  CHECK(m.core.GetTask(pending_id)->status() == pb::TASK_STATUS_CANCELLED);
}

TEST_CASE("A result is acknowledged to the worker only after it is stored") {
  Manual m;
  auto link = std::make_shared<FakeLink>();
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  uint64_t epoch = *m.core.RegisterWorker(reg, link);
  m.core.Submit(Echo(), [](absl::StatusOr<SubmitResult>) {});
  m.store.Commit();
  REQUIRE(link->assigned.size() == 1);
  pb::WorkerMessage msg;
  pb::TaskFinished* f = msg.add_finished();
  f->set_task_id(link->assigned[0].task_id());
  f->set_attempt(1);
  f->set_status(pb::TASK_STATUS_SUCCESS);
  m.core.HandleWorkerMessage("w1", epoch, msg);
  CHECK(link->acks.empty());
  m.store.Commit();
  CHECK(link->acks.size() == 1);
}

}  // namespace rc::coordinator
