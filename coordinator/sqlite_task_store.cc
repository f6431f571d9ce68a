#include "coordinator/sqlite_task_store.h"

#include <sqlite3.h>

#include <filesystem>

#include "absl/time/clock.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

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
};
static_assert(std::size(kMigrations) == SqliteTaskStore::kSchemaVersion);

// RAII for one prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

absl::Status SqlError(sqlite3* db, const std::string& path, absl::string_view what) {
  const int code = sqlite3_errcode(db);
  std::string msg = absl::StrCat(path, ": ", what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
    return absl::DataLossError(absl::StrCat(msg, " (not a usable retire-cluster database; move it aside)"));
  }
  return absl::UnavailableError(msg);
}

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

absl::Status SqliteTaskStore::Commit(const std::deque<Op>& batch) {
  if (absl::Status s = Step("BEGIN IMMEDIATE"); !s.ok()) return s;
  sqlite3_stmt* put = Prepared("INSERT OR REPLACE INTO tasks(task_id, status, finished_at_ms, record) VALUES (?, ?, ?, ?)");
  sqlite3_stmt* del = Prepared("DELETE FROM tasks WHERE task_id = ?");
  if (put == nullptr || del == nullptr) {
    absl::Status s = SqlError(db_, path_, "prepare");
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  // A task often changes several times within one batch (queued, assigned, running,
  // finished): write only its last version.
  absl::flat_hash_map<absl::string_view, const pb::Task*> last;
  for (const Op& op : batch) {
    for (const pb::Task& t : op.puts) last[t.task_id()] = &t;
  }
  std::string record;
  for (const Op& op : batch) {
    for (const pb::Task& t : op.puts) {
      if (last[t.task_id()] != &t) continue;
      t.SerializeToString(&record);
      sqlite3_bind_text(put, 1, t.task_id().data(), static_cast<int>(t.task_id().size()), SQLITE_STATIC);
      sqlite3_bind_int(put, 2, t.status());
      sqlite3_bind_int64(put, 3, t.finished_at_ms());
      sqlite3_bind_blob(put, 4, record.data(), static_cast<int>(record.size()), SQLITE_STATIC);
      int rc = sqlite3_step(put);
      sqlite3_reset(put);
      if (rc != SQLITE_DONE) {
        absl::Status s = SqlError(db_, path_, "write");
        Exec("ROLLBACK").IgnoreError();
        return s;
      }
    }
    for (const std::string& id : op.deletes) {
      sqlite3_bind_text(del, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
      int rc = sqlite3_step(del);
      sqlite3_reset(del);
      if (rc != SQLITE_DONE) {
        absl::Status s = SqlError(db_, path_, "delete");
        Exec("ROLLBACK").IgnoreError();
        return s;
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
  Statement q(db_, "SELECT record FROM tasks");
  if (!q.ok()) return SqlError(db_, path_, "read");
  std::vector<pb::Task> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    pb::Task& t = out.emplace_back();
    const void* data = sqlite3_column_blob(q.get(), 0);
    int size = sqlite3_column_bytes(q.get(), 0);
    if (!t.ParseFromArray(data, size)) {
      return absl::DataLossError(absl::StrCat(path_, ": a task record does not parse (row ", out.size(), ")"));
    }
  }
  if (rc != SQLITE_DONE) return SqlError(db_, path_, "read");
  return out;
}

}  // namespace rc::coordinator
