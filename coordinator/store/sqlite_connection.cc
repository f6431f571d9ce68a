#include "coordinator/store/sqlite_connection.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "coordinator/store/sqlite_util.h"
#include "coordinator/store/wal_write_buffer.h"
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
    // without them), so the fields those reads filter on get columns, and the payload
    // leaves the record for a column of its own: written with the first record, kept by
    // later ones (which leave it out). SplitRecords fills the new columns of existing rows
    // before the indexes are built. Few indexes, and none on a column that changes
    // before a task finishes: each costs every commit.
    "ALTER TABLE tasks ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN task_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN worker_device_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN payload BLOB;"
    "DROP INDEX tasks_finished_at;",
    // 3: workflows. A child's parent, set with its first record and never changed: lists
    // of a task's children read it, and idempotency keys of children are scoped to it.
    // Rows written before have no parent (the field did not exist): '' is their value,
    // so nothing is backfilled. The idempotency index gains the parent between owner and
    // key (replacing version 2's).
    "ALTER TABLE tasks ADD COLUMN parent_task_id TEXT NOT NULL DEFAULT '';"
    "DROP INDEX tasks_idempotency;",
    // 4: published JavaScript tasks (js_task_store.h). Every version of a name, its code
    // and its JsTask metadata (without code) as a record; per name its owner and the next
    // version number, kept when versions are removed so a number is never given twice.
    "CREATE TABLE js_tasks ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  code BLOB NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  meta BLOB NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(name, version)) WITHOUT ROWID;"
    "CREATE TABLE js_task_names ("
    "  name TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL,"
    "  next_version INTEGER NOT NULL) WITHOUT ROWID;",
};
// Run after migration N's data step (index N-1; nullptr: none).
constexpr const char* kMigrationIndexes[] = {
    nullptr,
    // finished_at_ms = 0 for every unfinished task (recovery), > 0 for finished ones (retention).
    "CREATE INDEX tasks_finished ON tasks(finished_at_ms);"
    "CREATE INDEX tasks_sequence ON tasks(sequence);"
    "CREATE INDEX tasks_idempotency ON tasks(owner, idempotency_key) WHERE idempotency_key != '';",
    "CREATE INDEX tasks_parent ON tasks(parent_task_id, sequence) WHERE parent_task_id != '';"
    "CREATE INDEX tasks_idempotency_scoped ON tasks(owner, parent_task_id, idempotency_key) WHERE idempotency_key != '';",
    nullptr,
};
static_assert(std::size(kMigrationIndexes) == std::size(kMigrations));
// Terminal statuses are 5..8 (task.proto); the SQL here and in the reads relies on it.
static_assert(pb::TASK_STATUS_SUCCESS == 5 && pb::TASK_STATUS_TIMEOUT == 8 && pb::TASK_STATUS_RUNNING == 4);
static_assert(std::size(kMigrations) == SqliteConnection::kSchemaVersion);

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // WAL frames go out with one write per commit (wal_write_buffer.h); the default VFS if
  // that one could not be registered.
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      WalWriteBufferVfs()) != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<SqliteConnection> conn(new SqliteConnection(path, db));
  absl::MutexLock lock(&conn->mu_);
  if (absl::Status s = conn->Configure(); !s.ok()) return s;
  if (absl::Status s = conn->Migrate(); !s.ok()) return s;
  return conn;
}

SqliteConnection::~SqliteConnection() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

absl::Status SqliteConnection::Configure() {
  // A coordinator restarted by a supervisor may find the old one still shutting down.
  sqlite3_busy_timeout(db_, 5000);
  // This process is the database's only user: holding its lock for good spares two
  // fcntl lock calls per commit, and WAL then needs no shared-memory index. A second
  // coordinator on the same data dir is refused (after the busy timeout).
  if (absl::Status s = Exec("PRAGMA locking_mode=EXCLUSIVE"); !s.ok()) return s;
  // journal_mode answers with a row; a non-database file fails here.
  {
    Statement wal(db_, "PRAGMA journal_mode=WAL");
    if (!wal.ok() || sqlite3_step(wal.get()) != SQLITE_ROW) {
      if (sqlite3_errcode(db_) == SQLITE_BUSY) {
        return absl::FailedPreconditionError(
            absl::StrCat(path_, " is in use by another retire-cluster-main; give each coordinator its own --data-dir"));
      }
      return SqlError(db_, path_, "cannot enable WAL");
    }
  }
  if (absl::Status s = Exec("PRAGMA synchronous=FULL"); !s.ok()) return s;
  {
    Statement page_size(db_, "PRAGMA page_size");
    if (page_size.ok() && sqlite3_step(page_size.get()) == SQLITE_ROW) {
      page_size_ = sqlite3_column_int64(page_size.get(), 0);
    }
  }
  // 2 MiB of page cache (SQLite's default), not more: a commit whose inserts split a
  // B-tree page moves a page through a scratch page number (the lock-byte page, far past
  // the end of the file), and the commit's end then walks the cache's whole hash table to
  // drop pages past the end. That walk grows with the cache: with 64 MiB it cost the
  // coordinator about 6-10 us of CPU per task at saturation (bench/README.md, issue 18).
  // Time-ordered task ids keep the writer on the last pages of each B-tree, which fit.
  return Exec("PRAGMA cache_size=-2048");
}

absl::Status SqliteConnection::Migrate() {
  int version = 0;
  {
    Statement v(db_, "PRAGMA user_version");
    if (!v.ok() || sqlite3_step(v.get()) != SQLITE_ROW) return SqlError(db_, path_, "cannot read schema version");
    version = sqlite3_column_int(v.get(), 0);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, " has schema version ", version, ", written by a newer retire-cluster; this one knows up to ",
        kSchemaVersion, ". Upgrade retire-cluster-main or use another --data-dir"));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status s = Exec(kMigrations[v]);
    if (s.ok() && v + 1 == 2) s = SplitRecords();
    if (s.ok() && kMigrationIndexes[v] != nullptr) s = Exec(kMigrationIndexes[v]);
    if (s.ok()) s = Exec(absl::StrCat("PRAGMA user_version=", v + 1).c_str());
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
    spdlog::info("{}: schema migrated to version {}", path_, v + 1);
  }
  return absl::OkStatus();
}

absl::Status SqliteConnection::Error(absl::string_view what) { return SqlError(db_, path_, what); }

sqlite3_stmt* SqliteConnection::Prepared(const char* sql) {
  auto [it, inserted] = statements_.emplace(sql, nullptr);
  if (inserted && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second, nullptr) != SQLITE_OK) {
    sqlite3_finalize(it->second);
    statements_.erase(it);
    return nullptr;
  }
  return it->second;
}

absl::Status SqliteConnection::Step(const char* sql) {
  sqlite3_stmt* stmt = Prepared(sql);
  if (stmt == nullptr) return SqlError(db_, path_, "prepare");
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  return rc == SQLITE_DONE ? absl::OkStatus() : SqlError(db_, path_, sql);
}

absl::Status SqliteConnection::Exec(const char* sql) {
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

absl::StatusOr<std::vector<pb::Task>> SqliteConnection::ParseRows(sqlite3_stmt* stmt, const char* what) {
  std::vector<pb::Task> out;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    absl::StatusOr<pb::Task> t = Parse(stmt, 0, 1);
    if (!t.ok()) return t.status();
    out.push_back(*std::move(t));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, path_, what);
  return out;
}

absl::StatusOr<pb::Task> SqliteConnection::Parse(sqlite3_stmt* stmt, int record_col, int payload_col) {
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

absl::Status SqliteConnection::SplitRecords() {
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
                 " idempotency_key = ?, payload = ? WHERE task_id = ?");
    if (!up.ok()) return SqlError(db_, path_, "migrate: prepare");
    std::string record;
    for (pb::Task& t : chunk) {
      std::string payload = std::move(*t.mutable_spec()->mutable_payload());
      t.mutable_spec()->clear_payload();
      t.SerializeToString(&record);
      sqlite3_bind_blob(up.get(), 1, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
      sqlite3_bind_int64(up.get(), 2, static_cast<int64_t>(t.sequence()));
      int col = 3;
      for (const std::string* v : {&t.owner(), &t.spec().task_type(), &t.worker_device_id(),
                                   &t.spec().idempotency_key()}) {
        sqlite3_bind_text(up.get(), col++, v->data(), static_cast<int>(v->size()), SQLITE_STATIC);
      }
      if (payload.empty()) {
        sqlite3_bind_null(up.get(), col++);
      } else {
        sqlite3_bind_blob(up.get(), col++, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
      }
      sqlite3_bind_text(up.get(), col, t.task_id().data(), static_cast<int>(t.task_id().size()), SQLITE_STATIC);
      const int rc = sqlite3_step(up.get());
      sqlite3_reset(up.get());
      if (rc != SQLITE_DONE) return SqlError(db_, path_, "migrate: write");
    }
  }
}

}  // namespace rc::coordinator
