#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "common/ids.h"
#include "coordinator/store/sqlite_task_store.h"

#include "tests/unit/write_sync.h"

namespace rc::coordinator {
namespace {

std::string TempDir() {
  std::string dir = (std::filesystem::temp_directory_path() / NewId("rc-store-test")).string();
  std::filesystem::create_directories(dir);
  return dir;
}

pb::Task MakeTask(const std::string& id, pb::TaskStatus status, int64_t finished_at = 0) {
  pb::Task t;
  t.set_task_id(id);
  t.set_status(status);
  t.set_finished_at_ms(finished_at);
  t.mutable_spec()->set_task_type("echo");
  t.mutable_spec()->set_payload(R"({"id":")" + id + R"("})");
  return t;
}


}  // namespace

TEST_CASE("A task becomes a row serialized once, its payload apart, and parses back whole") {
  pb::Task t = MakeTask("a", pb::TASK_STATUS_SUCCESS, 7);
  t.set_owner("alice");
  t.set_worker_device_id("w1");
  t.set_sequence(42);
  t.set_parent_task_id("p");
  t.mutable_spec()->set_idempotency_key("k");
  t.set_result("out");
  const pb::Task before = t;
  const TaskRecord r = ToRecord(t);
  CHECK(t.SerializeAsString() == before.SerializeAsString());  // the payload came back
  CHECK(r.task_id == "a");
  CHECK(r.status == pb::TASK_STATUS_SUCCESS);
  CHECK(r.finished_at_ms == 7);
  CHECK(r.sequence == 42);
  CHECK(r.owner == "alice");
  CHECK(r.task_type == "echo");
  CHECK(r.worker_device_id == "w1");
  CHECK(r.idempotency_key == "k");
  CHECK(r.parent_task_id == "p");
  CHECK(r.payload == before.spec().payload());
  pb::Task without;
  REQUIRE(without.ParseFromString(r.record));
  CHECK(without.spec().payload().empty());  // stored once, in its own column
  CHECK(without.result() == "out");
  absl::StatusOr<pb::Task> back = ParseRecord(r);
  REQUIRE(back.ok());
  CHECK(back->SerializeAsString() == before.SerializeAsString());

  TaskRecord bad = r;
  bad.record = "\xff\xff\xff";
  CHECK(ParseRecord(bad).status().code() == absl::StatusCode::kDataLoss);
  MemoryTaskStore memory;
  absl::Status answered = absl::UnknownError("not answered");
  memory.Write({bad}, [&](absl::Status s) { answered = s; });
  CHECK(answered.code() == absl::StatusCode::kDataLoss);
  auto none = memory.Get("a");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());  // nothing of the batch was kept
}

TEST_CASE("Records survive closing and reopening the data dir, the last write of a task wins") {
  const std::string dir = TempDir();
  {
    auto store = SqliteTaskStore::Open(dir);
    REQUIRE(store.ok());
    REQUIRE(WriteSync(**store, {MakeTask("a", pb::TASK_STATUS_QUEUED), MakeTask("b", pb::TASK_STATUS_QUEUED)}).ok());
    REQUIRE(WriteSync(**store, {MakeTask("a", pb::TASK_STATUS_SUCCESS, 5)}).ok());
  }
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  auto loaded = (*store)->LoadAll();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 2);
  for (const pb::Task& t : *loaded) {
    CHECK(t.spec().payload() == R"({"id":")" + t.task_id() + R"("})");
    if (t.task_id() == "a") CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
  }
  absl::Notification deleted;
  (*store)->Delete({"a", "missing"}, [&](absl::Status s) {
    CHECK(s.ok());
    deleted.Notify();
  });
  REQUIRE(deleted.WaitForNotificationWithTimeout(absl::Seconds(10)));
  CHECK((*store)->LoadAll()->size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Concurrent writes are all committed (group commit) and each caller is told") {
  const std::string dir = TempDir();
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  std::atomic<int> ok{0};
  absl::Notification all;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    (*store)->Write(ToRecords({MakeTask("t" + std::to_string(i), pb::TASK_STATUS_QUEUED)}), [&](absl::Status s) {
      if (s.ok() && ++ok == n) all.Notify();
    });
  }
  REQUIRE(all.WaitForNotificationWithTimeout(absl::Seconds(60)));
  CHECK((*store)->LoadAll()->size() == static_cast<size_t>(n));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A small commit with nothing behind it completes on the writer, a large one where PostCompletionsTo says") {
  const std::string dir = TempDir();
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  std::atomic<int> posted{0};
  REQUIRE((*store)->PostCompletionsTo([&](std::function<void()> work) {
    ++posted;
    work();  // on the writer thread too, but counted
  }));
  auto write = [&](int n, const std::string& prefix) {
    std::vector<pb::Task> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(MakeTask(prefix + std::to_string(i), pb::TASK_STATUS_QUEUED));
    absl::Notification done;
    (*store)->Write(ToRecords(tasks), [&](absl::Status s) {
      CHECK(s.ok());
      done.Notify();
    });
    REQUIRE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  };
  write(1, "small");
  CHECK(posted == 0);  // one record, nothing queued: the writer answered itself
  write(9, "large");
  CHECK(posted == 1);  // more than 8 records: handed to the completion thread
  (*store)->PostCompletionsTo(nullptr);
  std::filesystem::remove_all(dir);
}

TEST_CASE("A data dir from a newer release is refused, naming the path and versions") {
  const std::string dir = TempDir();
  { REQUIRE(SqliteTaskStore::Open(dir).ok()); }
  const std::string path = dir + "/tasks.db";
  sqlite3* db;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteTaskStore::Open(dir);
  CHECK(store.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(store.status().message()), Catch::StartsWith(path + " has schema version 99"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A corrupt database or an unusable data dir fails with a message naming the path") {
  const std::string dir = TempDir();
  {
    std::ofstream junk(dir + "/tasks.db");
    junk << std::string(8192, 'x');
  }
  auto store = SqliteTaskStore::Open(dir);
  CHECK(store.status().code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(store.status().message()), Catch::Contains(dir + "/tasks.db"));
  CHECK_THAT(std::string(store.status().message()), Catch::Contains("not a usable retire-cluster database"));

  const std::string file = dir + "/plain-file";
  { std::ofstream(file) << "x"; }
  auto under_file = SqliteTaskStore::Open(file + "/data");
  CHECK(under_file.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(under_file.status().message()), Catch::Contains("cannot create data dir " + file + "/data"));
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator

namespace rc::coordinator {

TEST_CASE("A version 1 database is migrated: payloads move to their table, reads filter on the new columns") {
  const std::string dir = TempDir();
  const std::string path = dir + "/tasks.db";
  {
    // The schema and rows the first release wrote: payloads inside the records.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE tasks (task_id TEXT PRIMARY KEY, status INTEGER NOT NULL,"
                         " finished_at_ms INTEGER NOT NULL, record BLOB NOT NULL) WITHOUT ROWID;"
                         "CREATE INDEX tasks_finished_at ON tasks(finished_at_ms) WHERE finished_at_ms > 0;"
                         "PRAGMA user_version=1;",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* put = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO tasks VALUES (?, ?, ?, ?)", -1, &put, nullptr) == SQLITE_OK);
    for (int i = 0; i < 3; ++i) {
      pb::Task t = MakeTask("t" + std::to_string(i), i == 0 ? pb::TASK_STATUS_QUEUED : pb::TASK_STATUS_SUCCESS, i * 10);
      t.set_sequence(i + 1);
      t.set_owner(i == 2 ? "bob" : "alice");
      t.mutable_spec()->set_idempotency_key("key" + std::to_string(i));
      std::string record = t.SerializeAsString();
      sqlite3_bind_text(put, 1, t.task_id().c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(put, 2, t.status());
      sqlite3_bind_int64(put, 3, t.finished_at_ms());
      sqlite3_bind_blob(put, 4, record.data(), static_cast<int>(record.size()), SQLITE_TRANSIENT);
      REQUIRE(sqlite3_step(put) == SQLITE_DONE);
      sqlite3_reset(put);
    }
    sqlite3_finalize(put);
    sqlite3_close(db);
  }
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  auto all = (*store)->LoadAll();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  for (const pb::Task& t : *all) CHECK(t.spec().payload() == R"({"id":")" + t.task_id() + R"("})");
  auto got = (*store)->Get("t1");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->spec().payload() == R"({"id":"t1"})");
  TaskFilter alice;
  alice.owner = "alice";
  auto listed = (*store)->ListFinished(alice);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);  // t0 is unfinished, t2 is bob's
  CHECK((*listed)[0].task_id() == "t1");
  auto key = (*store)->FindByIdempotencyKey("bob", "key2");
  REQUIRE(key.ok());
  REQUIRE(key->has_value());
  CHECK((*key)->first == "t2");
  CHECK_FALSE((*(*store)->FindByIdempotencyKey("alice", "key2")).has_value());
  auto recovery = (*store)->LoadForRecovery(0);  // no payload fits a zero budget
  REQUIRE(recovery.ok());
  REQUIRE(recovery->unfinished.size() == 1);
  CHECK_FALSE(recovery->unfinished[0].payload_loaded);
  CHECK(recovery->unfinished[0].payload_bytes == static_cast<int64_t>(std::string(R"({"id":"t0"})").size()));
  CHECK(recovery->max_sequence == 3);
  CHECK(recovery->max_task_id == "t2");
  CHECK(recovery->finished_counts.size() == 1);
  auto old = (*store)->FinishedBefore(15, 10);
  REQUIRE(old.ok());
  REQUIRE(old->size() == 1);
  CHECK((*old)[0].task_id == "t1");
  // A later record without its payload keeps the stored one.
  pb::Task again = MakeTask("t0", pb::TASK_STATUS_RUNNING);
  again.mutable_spec()->clear_payload();
  REQUIRE(WriteSync(**store, {again}).ok());
  auto payloads = (*store)->ReadPayloads({"t0", "nope"});
  REQUIRE(payloads.ok());
  CHECK(payloads->size() == 1);
  CHECK(payloads->at("t0") == R"({"id":"t0"})");
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator

namespace rc::coordinator {

TEST_CASE("The store counts the records and bytes it hands to SQLite and the pages it writes") {
  const std::string dir = TempDir();
  auto store = SqliteTaskStore::Open(dir);
  REQUIRE(store.ok());
  CHECK((*store)->write_stats().records == 0);
  CHECK((*store)->write_stats().bytes == 0);
  pb::Task a = MakeTask("a", pb::TASK_STATUS_QUEUED);
  pb::Task b = MakeTask("b", pb::TASK_STATUS_QUEUED);
  pb::Task a_done = MakeTask("a", pb::TASK_STATUS_SUCCESS, 5);
  a_done.set_result(std::string(1000, 'r'));
  // a is written twice: once when both writes land in one commit (group commit).
  absl::Notification first;
  (*store)->Write(ToRecords({a, b}), [&](absl::Status) { first.Notify(); });
  REQUIRE(WriteSync(**store, {a_done}).ok());
  REQUIRE(first.HasBeenNotified());
  const StoreWriteStats w = (*store)->write_stats();
  CHECK((w.records == 3 || w.records == 2));  // 2 when both writes went in one commit
  CHECK(w.bytes > 1000);
  CHECK(w.pages_written > 0);
  CHECK(w.page_size >= 512);
  std::filesystem::remove_all(dir);
}

}  // namespace rc::coordinator
