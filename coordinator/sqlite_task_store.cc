#include "coordinator/sqlite_task_store.h"

#include "coordinator/sqlite_util.h"

#include <sqlite3.h>

#include <filesystem>

#include "absl/time/clock.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

using sqlite_util::SqlError;
using sqlite_util::Statement;

// Migration N takes the schema from version N-1 to N. Append only; never edit one that
// has shipped.
constexpr const char* kMigrations[] = {
    // 1: task records, keyed by id; finished time indexed for retention.
    "CREATE TABLE tasks ("
    "  task_id TEXT PRIMARY KEY,"
    "  status INTEGER NOT NULL,"
    "  finished_at_ms INTEGER NOT NULL,"
    "  record BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX tasks_finished_at ON tasks(finished_at_ms) WHERE finished_at_ms > 0;",
    // 2: finished tasks are read from the store (ListTasks, idempotency keys, recovery
    // without them), so the fields those reads filter on get columns; payloads move to
    // their own table, written once per task rather than with every status change.
    // SplitRecords fills the columns of existing rows before the indexes are built.
    "ALTER TABLE tasks ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN task_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN worker_device_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';"
    // A rowid table: a WITHOUT ROWID row keeps only ~1 KB in its page and puts the rest of
    // a 1 KiB payload in an overflow page of its own (4 KiB on disk per task).
    "CREATE TABLE payloads (task_id TEXT PRIMARY KEY, payload BLOB NOT NULL);",
};
// Run after migration N's data step (index N-1; nullptr: none).
constexpr const char* kMigrationIndexes[] = {
    nullptr,
    "CREATE INDEX tasks_sequence ON tasks(sequence);"
    "CREATE INDEX tasks_unfinished ON tasks(sequence) WHERE status < 5;"
    "CREATE INDEX tasks_owner ON tasks(owner, sequence);"
    "CREATE INDEX tasks_idempotency ON tasks(owner, idempotency_key) WHERE idempotency_key != '';",
};
static_assert(std::size(kMigrationIndexes) == std::size(kMigrations));
// Terminal statuses are 5..8 (task.proto); the SQL above and in the reads relies on it.
static_assert(pb::TASK_STATUS_SUCCESS == 5 && pb::TASK_STATUS_TIMEOUT == 8 && pb::TASK_STATUS_RUNNING == 4);
static_assert(std::size(kMigrations) == SqliteTaskStore::kSchemaVersion);

constexpr int kCommitTries = 5;

}  // namespace


absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create data dir ", dir, ": ", ec.message()));
  const std::string path = (std::filesystem::path(dir) / "tasks.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    absl::Status s = absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<SqliteTaskStore> store(new SqliteTaskStore(path, db));
  absl::MutexLock lock(&store->db_mu_);
  // A coordinator restarted by a supervisor may find the old one still shutting down.
  sqlite3_busy_timeout(db, 5000);
  // This process is the database's only user: holding its lock for good spares two
  // fcntl lock calls per commit, and WAL then needs no shared-memory index. A second
  // coordinator on the same data dir is refused (after the busy timeout).
  if (absl::Status s = store->Exec("PRAGMA locking_mode=EXCLUSIVE"); !s.ok()) return s;
  // journal_mode answers with a row; a non-database file fails here.
  {
    Statement wal(db, "PRAGMA journal_mode=WAL");
    if (!wal.ok() || sqlite3_step(wal.get()) != SQLITE_ROW) {
      if (sqlite3_errcode(db) == SQLITE_BUSY) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " is in use by another retire-cluster-main; give each coordinator its own --data-dir"));
      }
      return SqlError(db, path, "cannot enable WAL");
    }
  }
  if (absl::Status s = store->Exec("PRAGMA synchronous=FULL"); !s.ok()) return s;
  // 64 MiB of page cache (default 2 MiB): the writer then rarely reads a page back.
  if (absl::Status s = store->Exec("PRAGMA cache_size=-65536"); !s.ok()) return s;
  int version = 0;
  {
    Statement v(db, "PRAGMA user_version");
    if (!v.ok() || sqlite3_step(v.get()) != SQLITE_ROW) return SqlError(db, path, "cannot read schema version");
    version = sqlite3_column_int(v.get(), 0);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", version, ", written by a newer retire-cluster; this one knows up to ",
        kSchemaVersion, ". Upgrade retire-cluster-main or use another --data-dir"));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    if (absl::Status s = store->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status s = store->Exec(kMigrations[v]);
    if (s.ok() && v + 1 == 2) s = store->SplitRecords();
    if (s.ok() && kMigrationIndexes[v] != nullptr) s = store->Exec(kMigrationIndexes[v]);
    if (s.ok()) s = store->Exec(absl::StrCat("PRAGMA user_version=", v + 1).c_str());
    if (s.ok()) s = store->Exec("COMMIT");
    if (!s.ok()) {
      store->Exec("ROLLBACK").IgnoreError();
      return s;
    }
    spdlog::info("{}: schema migrated to version {}", path, v + 1);
  }
  store->writer_ = std::thread([raw = store.get()] { raw->WriterLoop(); });
  return store;
}

SqliteTaskStore::SqliteTaskStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

void SqliteTaskStore::Close() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock lock(&close_mu_);
  if (writer_.joinable()) writer_.join();
}

SqliteTaskStore::~SqliteTaskStore() {
  Close();
  absl::MutexLock lock(&db_mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteTaskStore::Prepared(const char* sql) {
  auto [it, inserted] = statements_.emplace(sql, nullptr);
  if (inserted && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second, nullptr) != SQLITE_OK) {
    sqlite3_finalize(it->second);
    statements_.erase(it);
    return nullptr;
  }
  return it->second;
}

absl::Status SqliteTaskStore::Step(const char* sql) {
  sqlite3_stmt* stmt = Prepared(sql);
  if (stmt == nullptr) return SqlError(db_, path_, "prepare");
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : SqlError(db_, path_, sql);
}

absl::Status SqliteTaskStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    const int code = sqlite3_errcode(db_);
    absl::Status s = absl::UnavailableError(absl::StrCat(path_, ": ", msg));
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      s = absl::DataLossError(absl::StrCat(path_, ": ", msg, " (not a usable retire-cluster database; move it aside)"));
    }
    return s;
  }
  return absl::OkStatus();
}

void SqliteTaskStore::Enqueue(Op op) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      pending_.push_back(std::move(op));
      return;
    }
  }
  if (op.done) op.done(absl::UnavailableError(absl::StrCat(path_, ": task store is closing")));
}

void SqliteTaskStore::Write(std::vector<pb::Task> tasks, std::function<void(absl::Status)> done) {
  Enqueue(Op{std::move(tasks), {}, std::move(done)});
}

void SqliteTaskStore::Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) {
  Enqueue(Op{{}, std::move(task_ids), std::move(done)});
}

void SqliteTaskStore::WriterLoop() {
  while (true) {
    std::deque<Op> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](SqliteTaskStore* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->stopping_ || !s->pending_.empty(); },
          this));
      if (pending_.empty()) return;  // stopping, and everything is committed
      batch.swap(pending_);
    }
    // A failed commit (disk full, I/O error) is retried before anyone is told: callers
    // are only answered OK for what is on disk, and errors only after several tries.
    absl::Status status;
    absl::Duration wait = absl::Milliseconds(50);
    for (int attempt = 1; attempt <= kCommitTries; ++attempt) {
      {
        absl::MutexLock lock(&db_mu_);
        const absl::Time start = absl::Now();
        status = Commit(batch);
        commit_latency_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
      }
      if (status.ok()) break;
      spdlog::error("task store commit of {} operations failed (try {} of {}): {}", batch.size(), attempt,
                    kCommitTries, status.ToString());
      if (attempt < kCommitTries) absl::SleepFor(wait);
      wait *= 2;
    }
    for (Op& op : batch) {
      if (op.done) op.done(status);
    }
  }
}

absl::Status SqliteTaskStore::Commit(std::deque<Op>& batch) {
  if (absl::Status s = Step("BEGIN IMMEDIATE"); !s.ok()) return s;
  // An update sets only the columns that change after submit, so that the indexes on
  // the others are left alone.
  sqlite3_stmt* put = Prepared(
      "INSERT INTO tasks(task_id, status, finished_at_ms, record, sequence, owner, task_type, worker_device_id,"
      " idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET"
      " status = excluded.status, finished_at_ms = excluded.finished_at_ms, record = excluded.record,"
      " worker_device_id = excluded.worker_device_id");
  sqlite3_stmt* put_payload = Prepared("INSERT OR IGNORE INTO payloads(task_id, payload) VALUES (?, ?)");
  sqlite3_stmt* del = Prepared("DELETE FROM tasks WHERE task_id = ?");
  sqlite3_stmt* del_payload = Prepared("DELETE FROM payloads WHERE task_id = ?");
  if (put == nullptr || put_payload == nullptr || del == nullptr || del_payload == nullptr) {
    absl::Status s = SqlError(db_, path_, "prepare");
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  auto fail = [&](absl::string_view what) {
    absl::Status s = SqlError(db_, path_, what);
    Exec("ROLLBACK").IgnoreError();
    return s;
  };
  auto bind_text = [](sqlite3_stmt* st, int col, const std::string& v) {
    sqlite3_bind_text(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
  // A task often changes several times within one batch (queued, assigned, running,
  // finished): write only its last version, but the payload of whichever carries one.
  absl::flat_hash_map<absl::string_view, pb::Task*> last;
  for (Op& op : batch) {
    for (pb::Task& t : op.puts) last[t.task_id()] = &t;
  }
  std::string record;
  for (Op& op : batch) {
    for (pb::Task& t : op.puts) {
      // Out of the record while it is serialized; back in afterwards, on every path, as a
      // failed commit is tried again with the same batch.
      struct Lend {
        explicit Lend(pb::Task& t) : task(t) { payload.swap(*task.mutable_spec()->mutable_payload()); }
        ~Lend() { payload.swap(*task.mutable_spec()->mutable_payload()); }
        pb::Task& task;
        std::string payload;
      } lent(t);
      const std::string& payload = lent.payload;
      if (!payload.empty()) {
        bind_text(put_payload, 1, t.task_id());
        sqlite3_bind_blob(put_payload, 2, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
        const int rc = sqlite3_step(put_payload);
        sqlite3_reset(put_payload);
        if (rc != SQLITE_DONE) return fail("write payload");
      }
      if (last[t.task_id()] != &t) continue;
      t.SerializeToString(&record);
      bind_text(put, 1, t.task_id());
      sqlite3_bind_int(put, 2, t.status());
      sqlite3_bind_int64(put, 3, t.finished_at_ms());
      sqlite3_bind_blob(put, 4, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
      sqlite3_bind_int64(put, 5, static_cast<int64_t>(t.sequence()));
      bind_text(put, 6, t.owner());
      bind_text(put, 7, t.spec().task_type());
      bind_text(put, 8, t.worker_device_id());
      bind_text(put, 9, t.spec().idempotency_key());
      const int rc = sqlite3_step(put);
      sqlite3_reset(put);
      if (rc != SQLITE_DONE) return fail("write");
    }
    for (const std::string& id : op.deletes) {
      for (sqlite3_stmt* st : {del, del_payload}) {
        bind_text(st, 1, id);
        const int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return fail("delete");
      }
    }
  }
  if (absl::Status s = Step("COMMIT"); !s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pb::Task>> SqliteTaskStore::LoadAll() {
  absl::MutexLock lock(&db_mu_);
  Statement q(db_, "SELECT t.record, p.payload FROM tasks t LEFT JOIN payloads p USING (task_id)");
  if (!q.ok()) return SqlError(db_, path_, "read");
  std::vector<pb::Task> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    absl::StatusOr<pb::Task> t = Parse(q.get(), 0, 1);
    if (!t.ok()) return t.status();
    out.push_back(*std::move(t));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, path_, "read");
  return out;
}

absl::StatusOr<pb::Task> SqliteTaskStore::Parse(sqlite3_stmt* stmt, int record_col, int payload_col) {
  pb::Task t;
  if (!t.ParseFromArray(sqlite3_column_blob(stmt, record_col), sqlite3_column_bytes(stmt, record_col))) {
    return absl::DataLossError(absl::StrCat(path_, ": a task record does not parse"));
  }
  if (payload_col >= 0 && sqlite3_column_type(stmt, payload_col) != SQLITE_NULL) {
    const void* data = sqlite3_column_blob(stmt, payload_col);
    const int size = sqlite3_column_bytes(stmt, payload_col);
    t.mutable_spec()->set_payload(static_cast<const char*>(data), size);
  }
  return t;
}

absl::Status SqliteTaskStore::SplitRecords() {
  // In chunks by id: rows are rewritten while they are read.
  std::string after;
  while (true) {
    std::vector<pb::Task> chunk;
    {
      Statement q(db_, "SELECT record FROM tasks WHERE task_id > ? ORDER BY task_id LIMIT 1000");
      if (!q.ok()) return SqlError(db_, path_, "migrate: read");
      sqlite3_bind_text(q.get(), 1, after.data(), static_cast<int>(after.size()), SQLITE_STATIC);
      int rc;
      while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
        absl::StatusOr<pb::Task> t = Parse(q.get(), 0, -1);
        if (!t.ok()) return t.status();
        chunk.push_back(*std::move(t));
      }
      if (rc != SQLITE_DONE) return SqlError(db_, path_, "migrate: read");
    }
    if (chunk.empty()) return absl::OkStatus();
    after = chunk.back().task_id();
    Statement up(db_,
                 "UPDATE tasks SET record = ?, sequence = ?, owner = ?, task_type = ?, worker_device_id = ?,"
                 " idempotency_key = ? WHERE task_id = ?");
    Statement pay(db_, "INSERT OR REPLACE INTO payloads(task_id, payload) VALUES (?, ?)");
    if (!up.ok() || !pay.ok()) return SqlError(db_, path_, "migrate: prepare");
    std::string record;
    for (pb::Task& t : chunk) {
      std::string payload = std::move(*t.mutable_spec()->mutable_payload());
      t.mutable_spec()->clear_payload();
      if (!payload.empty()) {
        sqlite3_bind_text(pay.get(), 1, t.task_id().data(), static_cast<int>(t.task_id().size()), SQLITE_STATIC);
        sqlite3_bind_blob(pay.get(), 2, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
        const int rc = sqlite3_step(pay.get());
        sqlite3_reset(pay.get());
        if (rc != SQLITE_DONE) return SqlError(db_, path_, "migrate: write payload");
      }
      t.SerializeToString(&record);
      sqlite3_bind_blob(up.get(), 1, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
      sqlite3_bind_int64(up.get(), 2, static_cast<int64_t>(t.sequence()));
      int col = 3;
      for (const std::string* v : {&t.owner(), &t.spec().task_type(), &t.worker_device_id(),
                                   &t.spec().idempotency_key(), &t.task_id()}) {
        sqlite3_bind_text(up.get(), col++, v->data(), static_cast<int>(v->size()), SQLITE_STATIC);
      }
      const int rc = sqlite3_step(up.get());
      sqlite3_reset(up.get());
      if (rc != SQLITE_DONE) return SqlError(db_, path_, "migrate: write");
    }
  }
}

}  // namespace rc::coordinator
