#pragma once
// The durable TaskStore: one SQLite database (WAL, synchronous=FULL) in the data dir.
// Three pieces share the one connection under its mutex:
// - SqliteConnection (sqlite_connection.h): the handle, prepared statements, schema and
//   migrations;
// - SqliteWriter (sqlite_writer.h): the writer thread and its group commit; it only
//   writes, and a commit's callbacks go to the thread given to PostCompletionsTo;
// - the reads, here (sqlite_task_reads.cc).

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "coordinator/store/sqlite_connection.h"
#include "coordinator/store/sqlite_writer.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

class SqliteTaskStore final : public TaskStore {
 public:
  static constexpr int kSchemaVersion = SqliteConnection::kSchemaVersion;

  // Opens DIR/tasks.db, creating DIR and the database as needed, and migrates it.
  // FAILED_PRECONDITION for a database written by a newer release; DATA_LOSS for a file
  // that is not a usable database; UNAVAILABLE when DIR cannot be created or written.
  // Every message names the path.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(const std::string& dir);
  // Commits everything queued, then closes.
  ~SqliteTaskStore() override;

  void Write(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) override;
  void WriteUnhurried(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) override;
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
      const std::string& owner, const std::string& key, const std::string& parent_task_id = "") override;
  absl::StatusOr<std::vector<FinishedRef>> FinishedBefore(int64_t cutoff_ms, size_t limit) override;
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> ReadPayloads(
      const std::vector<std::string>& task_ids) override;
  const Histogram* commit_latency() const override { return writer_->commit_latency(); }
  StoreWriteStats write_stats() const override { return writer_->write_stats(); }

  const std::string& path() const { return conn_->path(); }
  // The connection, for the other tables of the database (SqliteJsTaskStore).
  SqliteConnection* connection() const { return conn_.get(); }

 private:
  explicit SqliteTaskStore(std::unique_ptr<SqliteConnection> conn);

  // Declared before the writer, which uses it until its thread is joined.
  const std::unique_ptr<SqliteConnection> conn_;
  const std::unique_ptr<SqliteWriter> writer_;
};

}  // namespace rc::coordinator
