#pragma once
// The durable TaskStore: one SQLite database (WAL, synchronous=FULL) in the data dir.
// A single writer thread owns every write and commits whatever has queued up while the
// previous transaction was committing (group commit): under load one fsync covers many
// submits and transitions, so durability costs little throughput. The writer only
// writes: a commit's callbacks go to the thread given to PostCompletionsTo.
//
// Schema changes are numbered migrations recorded in PRAGMA user_version; a database
// from a newer release is refused rather than misread.

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/task_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace rc::coordinator {

class SqliteTaskStore final : public TaskStore {
 public:
  static constexpr int kSchemaVersion = 2;

  // Opens DIR/tasks.db, creating DIR and the database as needed, and migrates it.
  // FAILED_PRECONDITION for a database written by a newer release; DATA_LOSS for a file
  // that is not a usable database; UNAVAILABLE when DIR cannot be created or written.
  // Every message names the path.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(const std::string& dir);
  // Commits everything queued, then closes.
  ~SqliteTaskStore() override;

  void Write(std::vector<pb::Task> tasks, std::function<void(absl::Status)> done) override;
  void Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) override;
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override;
  void Close() override;
  bool PostCompletionsTo(std::function<void(std::function<void()>)> post) override;
  // Reads (sqlite_task_reads.cc) share the one connection with the writer: the database
  // is opened in exclusive locking mode, so no other connection could read it. Each
  // waits for a commit in progress (a few ms at most).
  absl::StatusOr<RecoveryData> LoadForRecovery(int64_t payload_budget_bytes) override;
  absl::StatusOr<std::optional<pb::Task>> Get(const std::string& task_id) override;
  absl::StatusOr<std::vector<pb::Task>> ListFinished(const TaskFilter& filter) override;
  absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> FindByIdempotencyKey(
      const std::string& owner, const std::string& key) override;
  absl::StatusOr<std::vector<FinishedRef>> FinishedBefore(int64_t cutoff_ms, size_t limit) override;
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ReadPayloads(
      const std::vector<std::string>& task_ids) override;
  const Histogram* commit_latency() const override { return &commit_latency_; }
  StoreWriteStats write_stats() const override;

  const std::string& path() const { return path_; }

 private:
  struct Op {
    std::vector<pb::Task> puts;
    std::vector<std::string> deletes;
    std::function<void(absl::Status)> done;
  };

  SqliteTaskStore(std::string path, sqlite3* db);
  void Enqueue(Op op);
  void WriterLoop();
  // One transaction for the whole batch.
  // Records are stored without their payload, which has a column of its own, written
  // with a task's first record and kept when a later one leaves it out. Commit lends
  // payloads out of `batch` while serializing and puts them back.
  // Adds the records written and the bytes bound to `*records` and `*bytes`.
  absl::Status Commit(std::deque<Op>& batch, int64_t* records, int64_t* bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Migration 2's data step: fills the new columns and moves payloads out of records.
  absl::Status SplitRecords() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // A record from the database: `record` (without payload) parsed, `payload` set.
  absl::StatusOr<pb::Task> Parse(sqlite3_stmt* stmt, int record_col, int payload_col)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Steps `stmt` to its end, parsing every row (record in column 0, payload in 1);
  // `what` names the read in errors.
  absl::StatusOr<std::vector<pb::Task>> ParseRows(sqlite3_stmt* stmt, const char* what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // The statement for `sql` (a string literal), prepared once per connection; nullptr
  // if it does not prepare (the error is on the connection).
  sqlite3_stmt* Prepared(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Runs a cached statement that returns no rows.
  absl::Status Step(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);

  const std::string path_;
  absl::Mutex db_mu_;  // the connection: the writer and the reads
  sqlite3* db_ ABSL_GUARDED_BY(db_mu_);
  absl::flat_hash_map<const char*, sqlite3_stmt*> statements_ ABSL_GUARDED_BY(db_mu_);

  absl::Mutex mu_;
  std::deque<Op> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(std::function<void()>)> post_ ABSL_GUARDED_BY(mu_);  // see PostCompletionsTo
  absl::Mutex close_mu_;  // serializes joining the writer
  std::thread writer_;
  Histogram commit_latency_;
  // write_stats(), counted by the writer after each commit.
  std::atomic<int64_t> records_written_{0};
  std::atomic<int64_t> bytes_written_{0};
  std::atomic<int64_t> pages_written_{0};
  int64_t page_size_ = 0;  // set by Open
};

}  // namespace rc::coordinator
