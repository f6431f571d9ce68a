#include "coordinator/store/sqlite_task_store.h"

#include "coordinator/store/sqlite_util.h"

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
};
// Run after migration N's data step (index N-1; nullptr: none).
constexpr const char* kMigrationIndexes[] = {
    nullptr,
    // finished_at_ms = 0 for every unfinished task (recovery), > 0 for finished ones (retention).
    "CREATE INDEX tasks_finished ON tasks(finished_at_ms);"
    "CREATE INDEX tasks_sequence ON tasks(sequence);"
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
  {
    Statement page_size(db, "PRAGMA page_size");
    if (page_size.ok() && sqlite3_step(page_size.get()) == SQLITE_ROW) {
      store->page_size_ = sqlite3_column_int64(page_size.get(), 0);
    }
  }
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
        int64_t records = 0, bytes = 0;
        status = Commit(batch, &records, &bytes);
        commit_latency_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
        if (status.ok()) {
          records_written_ += records;
          bytes_written_ += bytes;
          int pages = 0, high = 0;
          if (sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_WRITE, &pages, &high, 0) == SQLITE_OK) pages_written_ = pages;
        }
      }
      if (status.ok()) break;
      spdlog::error("task store commit of {} operations failed (try {} of {}): {}", batch.size(), attempt,
                    kCommitTries, status.ToString());
      if (attempt < kCommitTries) absl::SleepFor(wait);
      wait *= 2;
    }
    std::vector<std::function<void(absl::Status)>> dones;
    dones.reserve(batch.size());
    for (Op& op : batch) {
      if (op.done) dones.push_back(std::move(op.done));
    }
    batch.clear();  // records freed here, not where the callbacks run
    std::function<void(std::function<void()>)> post;
    {
      absl::MutexLock lock(&mu_);
      post = post_;
    }
    auto run = [dones = std::move(dones), status] {
      for (const auto& done : dones) done(status);
    };
    if (post) {
      post(std::move(run));
    } else {
      run();
    }
  }
}

bool SqliteTaskStore::PostCompletionsTo(std::function<void(std::function<void()>)> post) {
  absl::MutexLock lock(&mu_);
  post_ = std::move(post);
  return post_ != nullptr;
}

StoreWriteStats SqliteTaskStore::write_stats() const {
  return StoreWriteStats{records_written_.load(), bytes_written_.load(), pages_written_.load(), page_size_};
}

absl::Status SqliteTaskStore::Commit(std::deque<Op>& batch, int64_t* records, int64_t* bytes) {
  if (absl::Status s = Step("BEGIN IMMEDIATE"); !s.ok()) return s;
  // An unfinished task's update sets no indexed column (finished_at_ms stays 0), so it
  // rewrites its row only; the finishing one also moves its tasks_finished entry.
  sqlite3_stmt* put = Prepared(
      "INSERT INTO tasks(task_id, status, finished_at_ms, record, sequence, owner, task_type, worker_device_id,"
      " idempotency_key, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET"
      " status = excluded.status, record = excluded.record, worker_device_id = excluded.worker_device_id,"
      " payload = coalesce(excluded.payload, tasks.payload)");
  sqlite3_stmt* finish = Prepared("UPDATE tasks SET finished_at_ms = ? WHERE task_id = ? AND finished_at_ms != ?");
  sqlite3_stmt* del = Prepared("DELETE FROM tasks WHERE task_id = ?");
  if (put == nullptr || finish == nullptr || del == nullptr) {
    absl::Status s = SqlError(db_, path_, "prepare");
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  auto fail = [&](absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    absl::Status s = SqlError(db_, path_, what);
    Exec("ROLLBACK").IgnoreError();
    return s;
  };
  auto bind_text = [bytes](sqlite3_stmt* st, int col, const std::string& v) {
    sqlite3_bind_text(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    *bytes += static_cast<int64_t>(v.size());
  };
  auto bind_blob = [bytes](sqlite3_stmt* st, int col, const std::string& v) {
    sqlite3_bind_blob(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    *bytes += static_cast<int64_t>(v.size());
  };
  auto bind_int = [bytes](sqlite3_stmt* st, int col, int64_t v) {
    sqlite3_bind_int64(st, col, v);
    *bytes += 8;
  };
  // A task often changes several times within one batch (queued, assigned, running,
  // finished): write only its last version, with the payload of whichever carries one.
  absl::flat_hash_map<absl::string_view, pb::Task*> last;
  absl::flat_hash_map<absl::string_view, const std::string*> payload_of;
  for (Op& op : batch) {
    for (pb::Task& t : op.puts) {
      last[t.task_id()] = &t;
      if (!t.spec().payload().empty()) payload_of[t.task_id()] = &t.spec().payload();
    }
  }
  std::string record;
  for (Op& op : batch) {
    for (pb::Task& t : op.puts) {
      if (last[t.task_id()] != &t) continue;
      std::string payload;
      {
        // Out of the record while it is serialized, then back: a failed commit is tried
        // again with the same batch.
        std::string* held = t.mutable_spec()->mutable_payload();
        held->swap(payload);
        t.SerializeToString(&record);
        held->swap(payload);
      }
      ++*records;
      bind_text(put, 1, t.task_id());
      bind_int(put, 2, t.status());
      bind_int(put, 3, t.finished_at_ms());
      bind_blob(put, 4, record);
      bind_int(put, 5, static_cast<int64_t>(t.sequence()));
      bind_text(put, 6, t.owner());
      bind_text(put, 7, t.spec().task_type());
      bind_text(put, 8, t.worker_device_id());
      bind_text(put, 9, t.spec().idempotency_key());
      auto p = payload_of.find(t.task_id());
      if (p != payload_of.end()) {
        bind_blob(put, 10, *p->second);
      } else {
        sqlite3_bind_null(put, 10);  // keeps the stored payload (none stored: empty)
      }
      int rc = sqlite3_step(put);
      sqlite3_reset(put);
      if (rc != SQLITE_DONE) return fail("write");
      if (t.finished_at_ms() != 0) {
        bind_int(finish, 1, t.finished_at_ms());
        bind_text(finish, 2, t.task_id());
        bind_int(finish, 3, t.finished_at_ms());
        rc = sqlite3_step(finish);
        sqlite3_reset(finish);
        if (rc != SQLITE_DONE) return fail("write");
      }
    }
    for (const std::string& id : op.deletes) {
      bind_text(del, 1, id);
      const int rc = sqlite3_step(del);
      sqlite3_reset(del);
      if (rc != SQLITE_DONE) return fail("delete");
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
  Statement q(db_, "SELECT record, payload FROM tasks");
  if (!q.ok()) return SqlError(db_, path_, "read");
  return ParseRows(q.get(), "read");
}

absl::StatusOr<std::vector<pb::Task>> SqliteTaskStore::ParseRows(sqlite3_stmt* stmt, const char* what) {
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
