#pragma once
// The one SQLite connection of a SqliteTaskStore: the handle, its prepared statements and
// the schema. The writer and the reads share it under its mutex (mu()): the database is
// opened in exclusive locking mode, so no second connection could read it.
//
// Schema changes are numbered migrations recorded in PRAGMA user_version; a database
// from a newer release is refused rather than misread.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "retire_cluster/v1/task.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

class SqliteConnection {
 public:
  static constexpr int kSchemaVersion = 4;

  // Opens PATH (creating the file as needed), configures it (exclusive lock, WAL,
  // synchronous=FULL) and migrates it. FAILED_PRECONDITION for a database written by a
  // newer release or in use by another process; DATA_LOSS for a file that is not a
  // usable database; UNAVAILABLE otherwise. Every message names the path.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(const std::string& path);
  // Finalizes the statements and closes the handle.
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // Held for every use of the handle and the statements below.
  absl::Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }
  const std::string& path() const { return path_; }
  // The database page size, read at Open.
  int64_t page_size() const { return page_size_; }

  sqlite3* db() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return db_; }
  // The connection's last error as a Status naming the path and `what`.
  absl::Status Error(absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The statement for `sql` (a string literal), prepared once per connection; nullptr
  // if it does not prepare (the error is on the connection).
  sqlite3_stmt* Prepared(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs a cached statement that returns no rows.
  absl::Status Step(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A record from the database: `record` (without payload) parsed, `payload` set
  // (payload_col < 0: left out).
  absl::StatusOr<pb::Task> Parse(sqlite3_stmt* stmt, int record_col, int payload_col)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Steps `stmt` to its end, parsing every row (record in column 0, payload in 1);
  // `what` names the read in errors.
  absl::StatusOr<std::vector<pb::Task>> ParseRows(sqlite3_stmt* stmt, const char* what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  SqliteConnection(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  // The pragmas and the migrations, at Open.
  absl::Status Configure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Migration 2's data step: fills the new columns and moves payloads out of records.
  absl::Status SplitRecords() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  int64_t page_size_ = 0;  // set by Configure, before the connection is shared
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const char*, sqlite3_stmt*> statements_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
