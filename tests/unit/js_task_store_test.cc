// Published JavaScript tasks in the SQLite database (schema version 4): versions survive a
// restart, a removed number is never given again, and a version 3 database migrates.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/ids.h"
#include "coordinator/core/js_tasks.h"
#include "coordinator/store/js_task_store.h"
#include "coordinator/store/sqlite_task_store.h"
#include "tests/unit/write_sync.h"

namespace rc::coordinator {
namespace {

std::string TempDir() {
  std::string dir = (std::filesystem::temp_directory_path() / NewId("rc-js-store-test")).string();
  std::filesystem::create_directories(dir);
  return dir;
}

std::string Module(const std::string& name, int n) {
  return "/** @task " + name + "\n * @param {number} [input.n] - n */\nmodule.exports = () => " +
         std::to_string(n) + ";\n";
}

int UserVersion(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  int version = -1;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) == SQLITE_OK);
  if (sqlite3_step(q) == SQLITE_ROW) version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return version;
}

TEST_CASE("SQLite: published versions, owners and next numbers survive reopening the data dir") {
  const std::string dir = TempDir();
  FakeClock clock;
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    SqliteJsTaskStore js(store->get()->connection());
    JsTaskRegistry registry(&js, &clock, 1 << 20);
    REQUIRE(registry.Load().ok());
    CHECK(registry.List().empty());
    for (int n = 1; n <= 3; ++n) REQUIRE(registry.Publish(Module("kept", n), "", {"alice", false}).ok());
    REQUIRE(registry.Publish(Module("other", 1), "", {"bob", false}).ok());
    REQUIRE(registry.Remove("kept", 3, {"alice", false}).value() == 1);
    REQUIRE(registry.Remove("other", 0, {"bob", false}).value() == 1);
    // Task writes share the connection with published tasks.
    pb::Task t;
    t.set_task_id("task-1");
    t.set_status(pb::TASK_STATUS_QUEUED);
    t.mutable_spec()->set_task_type("js");
    REQUIRE(WriteSync(**store, {t}).ok());
  }
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    SqliteJsTaskStore js(store->get()->connection());
    JsTaskRegistry registry(&js, &clock, 1 << 20);
    REQUIRE(registry.Load().ok());
    std::vector<pb::JsTask> list = registry.List();
    REQUIRE(list.size() == 1);
    CHECK(list[0].name() == "kept");
    CHECK(list[0].version() == 2);
    CHECK(list[0].versions() == 2);
    CHECK(list[0].owner() == "alice");
    CHECK(list[0].params_size() == 1);
    CHECK(list[0].params(0).name() == "input.n");
    absl::StatusOr<pb::JsTask> v1 = registry.Get("kept", 1);
    REQUIRE(v1.ok());
    CHECK(v1->code() == Module("kept", 1));
    CHECK(v1->sha256() == Sha256Hex(Module("kept", 1)));
    CHECK(v1->created_at_ms() == clock.NowMs());
    CHECK(registry.Get("kept", 3).status().code() == absl::StatusCode::kNotFound);
    // Version 3 was removed, yet 4 comes next; "other" lost its versions, not its owner.
    CHECK(registry.Publish(Module("kept", 9), "", {"alice", false})->task.version() == 4);
    CHECK(registry.Publish(Module("other", 2), "", {"alice", false}).status().code() ==
          absl::StatusCode::kPermissionDenied);
    CHECK(registry.Publish(Module("other", 2), "", {"bob", false})->task.version() == 2);
    CHECK(store->get()->Get("task-1").value().has_value());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("SQLite: a version 3 database migrates to version 4 on open, its tasks kept") {
  const std::string dir = TempDir();
  const std::string path = dir + "/tasks.db";
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    pb::Task t;
    t.set_task_id("task-old");
    t.set_status(pb::TASK_STATUS_QUEUED);
    t.mutable_spec()->set_task_type("echo");
    t.mutable_spec()->set_payload(R"({"old":true})");
    REQUIRE(WriteSync(**store, {t}).ok());
  }
  {
    // Back to what version 3 wrote: the same tables without the published tasks'.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE js_tasks; DROP TABLE js_task_names; PRAGMA user_version=3;", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  REQUIRE(UserVersion(path) == 3);
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    absl::StatusOr<std::optional<pb::Task>> old = store->get()->Get("task-old");
    REQUIRE(old.ok());
    REQUIRE(old->has_value());
    CHECK((*old)->spec().payload() == R"({"old":true})");
    SqliteJsTaskStore js(store->get()->connection());
    FakeClock clock;
    JsTaskRegistry registry(&js, &clock, 1 << 20);
    REQUIRE(registry.Load().ok());
    CHECK(registry.List().empty());
    CHECK(registry.Publish(Module("fresh", 1), "", {"alice", false})->task.version() == 1);
  }
  CHECK(UserVersion(path) == SqliteTaskStore::kSchemaVersion);
  CHECK(SqliteTaskStore::kSchemaVersion == 4);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rc::coordinator
