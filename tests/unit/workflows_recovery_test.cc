// Workflows across a restart: the graph's edges come back from the stored records
// (MemoryTaskStore and SQLite), pending tasks keep waiting and resolve as their
// dependencies end, ends that happened without their consequence are applied at
// recovery; the SQLite store lists children by parent and migrates an older data dir.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/ids.h"
#include "common/task_names.h"
#include "coordinator/store/sqlite_task_store.h"
#include "tests/unit/coordinator_fixture.h"

#include "tests/unit/write_sync.h"

namespace rc::coordinator {
namespace {

// A worker link the store's completion thread may also call.
class LockedLink final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    absl::MutexLock lock(&mu_);
    for (const auto& a : m.assignments()) assigned_.push_back(a);
  }
  void Close(absl::Status) override {}
  std::optional<pb::Assignment> Of(const std::string& id) {
    absl::MutexLock lock(&mu_);
    for (const auto& a : assigned_) {
      if (a.task_id() == id) return a;
    }
    return std::nullopt;
  }

 private:
  absl::Mutex mu_;
  std::vector<pb::Assignment> assigned_ ABSL_GUARDED_BY(mu_);
};

std::string TempDir() {
  std::string dir = (std::filesystem::temp_directory_path() / NewId("rc-workflows-test")).string();
  std::filesystem::create_directories(dir);
  return dir;
}


pb::Register Worker(const std::vector<std::pair<std::string, int32_t>>& running = {}) {
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("w1");
  reg.mutable_capabilities()->set_slots(1);
  reg.mutable_capabilities()->add_task_types("echo");
  for (const auto& [id, attempt] : running) {
    pb::RunningAttempt* r = reg.add_running();
    r->set_task_id(id);
    r->set_attempt(attempt);
  }
  return reg;
}

void Finish(Coordinator& c, uint64_t epoch, const std::string& id, int32_t attempt, pb::TaskStatus status) {
  pb::WorkerMessage m;
  pb::TaskFinished* f = m.add_finished();
  f->set_task_id(id);
  f->set_attempt(attempt);
  f->set_status(status);
  f->set_result("{}");
  c.HandleWorkerMessage("w1", epoch, m);
}

std::vector<std::string> WaitingFor(const pb::Task& t) { return {t.waiting_for().begin(), t.waiting_for().end()}; }

// The DAG the first coordinator leaves in its store, by name.
struct Dag {
  std::string a, b, c, d, k;
};

// A (assigned to w1, attempt 1); B after A; C after B (any); D after A (notok); K a
// child of A, queued. Built on a coordinator over `store` that then goes away.
Dag BuildDag(TaskStore* store, FakeClock* clock) {
  Coordinator before(Fixture::Options(), store, clock);
  auto link = std::make_shared<LockedLink>();
  REQUIRE(before.RegisterWorker(Worker(), link).ok());
  auto submit = [&](const std::function<void(pb::TaskSpec*)>& edit, const Submitter& by = {}) {
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    if (edit) edit(&spec);
    std::string id;
    before.Submit(spec, [&](absl::StatusOr<SubmitResult> r) {
      REQUIRE(r.ok());
      id = r->task_id;
    }, by);
    return id;
  };
  auto after = [](const std::string& id, pb::DependencyCondition c = pb::DEPENDENCY_CONDITION_OK) {
    return [id, c](pb::TaskSpec* s) {
      pb::Dependency* d = s->add_after();
      d->set_task_id(id);
      d->set_condition(c);
    };
  };
  Dag g;
  g.a = submit(nullptr);
  g.b = submit(after(g.a));
  g.c = submit(after(g.b, pb::DEPENDENCY_CONDITION_ANY));
  g.d = submit(after(g.a, pb::DEPENDENCY_CONDITION_NOTOK));
  Submitter child;
  child.parent_task_id = g.a;
  g.k = submit(nullptr, child);
  REQUIRE(link->Of(g.a).has_value());
  return g;
}

// Records of tasks whose end was stored without its consequence (as if the coordinator
// died between them): X ended success; Y waits for X (ok), Z for X (notok); W is X's child.
std::vector<pb::Task> EndedWhileDown() {
  auto task = [](const std::string& id, pb::TaskStatus status, uint64_t seq) {
    pb::Task t;
    t.set_task_id(id);
    t.set_status(status);
    t.set_sequence(seq);
    t.mutable_spec()->set_task_type("echo");
    t.mutable_spec()->set_payload("{}");
    if (IsTerminal(status)) t.set_finished_at_ms(1);
    return t;
  };
  pb::Task x = task("task-x", pb::TASK_STATUS_SUCCESS, 100);
  pb::Task y = task("task-y", pb::TASK_STATUS_PENDING, 101);
  y.mutable_spec()->add_after()->set_task_id("task-x");
  y.add_waiting_for("task-x");  // stale: recomputed at recovery
  pb::Task z = task("task-z", pb::TASK_STATUS_PENDING, 102);
  pb::Dependency* d = z.mutable_spec()->add_after();
  d->set_task_id("task-x");
  d->set_condition(pb::DEPENDENCY_CONDITION_NOTOK);
  pb::Task w = task("task-w", pb::TASK_STATUS_QUEUED, 103);
  w.set_parent_task_id("task-x");
  return {x, y, z, w};
}

// A coordinator recovered from `store` keeps the pending DAG and resolves it.
void CheckRecovered(TaskStore* store, FakeClock* clock, const Dag& g) {
  CoordinatorOptions o = Fixture::Options();
  o.finished_cache_tasks = 0;  // finished tasks are read back from the store
  Coordinator after(o, store, clock);
  REQUIRE(after.RecoverFromStore().ok());
  pb::Task b = *after.GetTask(g.b);
  CHECK(b.status() == pb::TASK_STATUS_PENDING);
  CHECK(WaitingFor(b) == std::vector<std::string>{g.a});
  CHECK(WaitingFor(*after.GetTask(g.c)) == std::vector<std::string>{g.b});
  CHECK(after.GetTask(g.k)->status() == pb::TASK_STATUS_QUEUED);
  // Ended while down: the consequences now.
  CHECK(after.GetTask("task-y")->status() == pb::TASK_STATUS_QUEUED);
  CHECK(after.GetTask("task-y")->waiting_for_size() == 0);
  CHECK(after.GetTask("task-z")->error_message() == "dependency task-x ended success; this task needed notok");
  CHECK(after.GetTask("task-w")->status() == pb::TASK_STATUS_QUEUED);  // a parent's success leaves it be

  // w1 returns still running A, which then succeeds.
  auto link = std::make_shared<LockedLink>();
  absl::StatusOr<uint64_t> epoch = after.RegisterWorker(Worker({{g.a, 1}}), link);
  REQUIRE(epoch.ok());
  Finish(after, *epoch, g.a, 1, pb::TASK_STATUS_SUCCESS);
  CHECK(after.GetTask(g.b)->status() == pb::TASK_STATUS_ASSIGNED);  // queued, and took A's slot
  CHECK(after.GetTask(g.d)->error_message() == "dependency " + g.a + " ended success; this task needed notok");
  CHECK(after.GetTask(g.k)->error_message().empty());  // A succeeded: its child runs on
  CHECK(WaitingFor(*after.GetTask(g.c)) == std::vector<std::string>{g.b});
  std::optional<pb::Assignment> b_run = link->Of(g.b);
  REQUIRE(b_run.has_value());
  Finish(after, *epoch, g.b, b_run->attempt(), pb::TASK_STATUS_FAILED);  // retried: not an end yet
  CHECK(after.GetTask(g.c)->status() == pb::TASK_STATUS_PENDING);

  // The children of A, finished and out of memory, are listed from the store.
  TaskFilter children;
  children.parent_task_id = g.a;
  auto listed = after.ListTasks(children);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].task_id() == g.k);
  after.Shutdown();
}

}  // namespace

TEST_CASE("Workflows: a pending DAG survives a restart (memory store) and resolves as dependencies end") {
  FakeClock clock;
  MemoryTaskStore store;
  Dag g = BuildDag(&store, &clock);
  REQUIRE(WriteSync(store, EndedWhileDown()).ok());
  CheckRecovered(&store, &clock, g);
}

TEST_CASE("Workflows: a pending DAG survives a restart of the SQLite store") {
  FakeClock clock;
  MemoryTaskStore first;
  Dag g = BuildDag(&first, &clock);
  const std::string dir = TempDir();
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    std::vector<pb::Task> records = *first.LoadAll();
    for (pb::Task& t : EndedWhileDown()) records.push_back(std::move(t));
    REQUIRE(WriteSync(**store, std::move(records)).ok());
    (*store)->Close();
  }
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  CheckRecovered(store->get(), &clock, g);
  (*store)->Close();
  std::filesystem::remove_all(dir);
}

TEST_CASE("Workflows: a version 2 data dir gains the parent column, keys and lists are scoped by parent") {
  const std::string dir = TempDir();
  const std::string path = dir + "/tasks.db";
  {
    // The schema version 2 wrote (no parent column), with one keyed top-level task.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE tasks (task_id TEXT PRIMARY KEY, status INTEGER NOT NULL,"
                         " finished_at_ms INTEGER NOT NULL, record BLOB NOT NULL,"
                         " sequence INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',"
                         " task_type TEXT NOT NULL DEFAULT '', worker_device_id TEXT NOT NULL DEFAULT '',"
                         " idempotency_key TEXT NOT NULL DEFAULT '', payload BLOB) WITHOUT ROWID;"
                         "CREATE INDEX tasks_finished ON tasks(finished_at_ms);"
                         "CREATE INDEX tasks_sequence ON tasks(sequence);"
                         "CREATE INDEX tasks_idempotency ON tasks(owner, idempotency_key) WHERE idempotency_key != '';"
                         "PRAGMA user_version=2;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    pb::Task t;
    t.set_task_id("task-old");
    t.set_status(pb::TASK_STATUS_SUCCESS);
    t.set_finished_at_ms(5);
    t.set_sequence(1);
    t.set_owner("alice");
    t.mutable_spec()->set_task_type("echo");
    t.mutable_spec()->set_idempotency_key("k");
    const std::string record = t.SerializeAsString();
    sqlite3_stmt* put = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO tasks(task_id, status, finished_at_ms, record, sequence, owner, task_type,"
                               " idempotency_key) VALUES ('task-old', 5, 5, ?, 1, 'alice', 'echo', 'k')",
                               -1, &put, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(put, 1, record.data(), static_cast<int>(record.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(put) == SQLITE_DONE);
    sqlite3_finalize(put);
    sqlite3_close(db);
  }
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    // A child of task-old with the same key and owner: scoped apart.
    pb::Task child;
    child.set_task_id("task-child");
    child.set_status(pb::TASK_STATUS_CANCELLED);
    child.set_finished_at_ms(6);
    child.set_sequence(2);
    child.set_owner("alice");
    child.set_parent_task_id("task-old");
    child.mutable_spec()->set_task_type("echo");
    child.mutable_spec()->set_idempotency_key("k");
    REQUIRE(WriteSync(**store, {child}).ok());
    auto top = (*store)->FindByIdempotencyKey("alice", "k");
    REQUIRE(top.ok());
    REQUIRE(top->has_value());
    CHECK((*top)->first == "task-old");
    auto scoped = (*store)->FindByIdempotencyKey("alice", "k", "task-old");
    REQUIRE(scoped.ok());
    REQUIRE(scoped->has_value());
    CHECK((*scoped)->first == "task-child");
    CHECK_FALSE((*(*store)->FindByIdempotencyKey("alice", "k", "task-other")).has_value());
    TaskFilter f;
    f.parent_task_id = "task-old";
    auto listed = (*store)->ListFinished(f);
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].task_id() == "task-child");
    (*store)->Close();
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT task_id, parent_task_id FROM tasks ORDER BY sequence", -1, &q, nullptr) ==
          SQLITE_OK);
  std::vector<std::string> rows;
  while (sqlite3_step(q) == SQLITE_ROW) {
    rows.push_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) + ":" +
                   reinterpret_cast<const char*>(sqlite3_column_text(q, 1)));
  }
  sqlite3_finalize(q);
  int version = 0;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) == SQLITE_OK);
  if (sqlite3_step(q) == SQLITE_ROW) version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  CHECK(rows == std::vector<std::string>{"task-old:", "task-child:task-old"});
  CHECK(version == SqliteTaskStore::kSchemaVersion);  // every migration ran (3 when written; 4 since issue 16)
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator
