// SqliteTaskStore: the reads (see task_store.h). Each runs on the writer's connection,
// between commits.
#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "coordinator/store/sqlite_task_store.h"
#include "coordinator/store/sqlite_util.h"

namespace rc::coordinator {

using sqlite_util::Statement;

namespace {

void BindText(sqlite3_stmt* st, int col, const std::string& v) {
  sqlite3_bind_text(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string ColumnText(sqlite3_stmt* st, int col) {
  const unsigned char* p = sqlite3_column_text(st, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(st, col));
}

}  // namespace

absl::StatusOr<std::vector<pb::Task>> SqliteTaskStore::LoadAll() {
  absl::MutexLock lock(&conn_->mu());
  Statement q(conn_->db(), "SELECT record, payload FROM tasks");
  if (!q.ok()) return conn_->Error("read");
  return conn_->ParseRows(q.get(), "read");
}

absl::StatusOr<RecoveryData> SqliteTaskStore::LoadForRecovery(int64_t payload_budget_bytes) {
  absl::MutexLock lock(&conn_->mu());
  RecoveryData out;
  {
    // Sized first: growing the vector moved every task built so far (each move builds a
    // new message in fresh memory), which took about a third of a restart on 100k tasks.
    Statement count(conn_->db(), "SELECT count(*) FROM tasks WHERE finished_at_ms = 0");
    if (!count.ok() || sqlite3_step(count.get()) != SQLITE_ROW) return conn_->Error("count unfinished tasks");
    out.unfinished.reserve(static_cast<size_t>(sqlite3_column_int64(count.get(), 0)));
  }
  {
    Statement q(conn_->db(),
                "SELECT record, length(payload), payload FROM tasks WHERE finished_at_ms = 0 ORDER BY sequence");
    if (!q.ok()) return conn_->Error("read unfinished tasks");
    int64_t loaded = 0;
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      const int64_t payload_bytes = sqlite3_column_int64(q.get(), 1);
      // Only payloads within the budget are read at all; the others stay on disk.
      const bool payload_loaded = loaded + payload_bytes <= payload_budget_bytes;
      absl::StatusOr<pb::Task> t = conn_->Parse(q.get(), 0, payload_loaded ? 2 : -1);
      if (!t.ok()) return t.status();
      if (payload_loaded) loaded += payload_bytes;
      RecoveredTask& r = out.unfinished.emplace_back();
      r.task.Swap(&*t);
      r.payload_bytes = payload_bytes;
      r.payload_loaded = payload_loaded;
    }
    if (rc != SQLITE_DONE) return conn_->Error("read unfinished tasks");
  }
  {
    Statement q(conn_->db(),
                "SELECT task_type, status, count(*) FROM tasks WHERE finished_at_ms > 0 AND status >= 5"
                " GROUP BY task_type, status");
    if (!q.ok()) return conn_->Error("count finished tasks");
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      out.finished_counts.emplace_back(ColumnText(q.get(), 0), static_cast<pb::TaskStatus>(sqlite3_column_int(q.get(), 1)),
                                       sqlite3_column_int64(q.get(), 2));
    }
    if (rc != SQLITE_DONE) return conn_->Error("count finished tasks");
  }
  {
    Statement q(conn_->db(), "SELECT (SELECT max(sequence) FROM tasks), (SELECT max(task_id) FROM tasks)");
    if (!q.ok() || sqlite3_step(q.get()) != SQLITE_ROW) return conn_->Error("read the newest task");
    out.max_sequence = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
    out.max_task_id = ColumnText(q.get(), 1);
  }
  return out;
}

absl::StatusOr<std::optional<pb::Task>> SqliteTaskStore::Get(const std::string& task_id) {
  absl::MutexLock lock(&conn_->mu());
  sqlite3_stmt* q = conn_->Prepared("SELECT record, payload FROM tasks WHERE task_id = ?");
  if (q == nullptr) return conn_->Error("prepare");
  BindText(q, 1, task_id);
  const int rc = sqlite3_step(q);
  absl::StatusOr<std::optional<pb::Task>> out = std::nullopt;
  if (rc == SQLITE_ROW) {
    absl::StatusOr<pb::Task> t = conn_->Parse(q, 0, 1);
    out = t.ok() ? absl::StatusOr<std::optional<pb::Task>>(*std::move(t)) : t.status();
  } else if (rc != SQLITE_DONE) {
    out = conn_->Error("read a task");
  }
  sqlite3_reset(q);
  return out;
}

absl::StatusOr<std::vector<pb::Task>> SqliteTaskStore::ListFinished(const TaskFilter& f) {
  // Filters go to SQL; the index on sequence gives the order.
  std::string sql = "SELECT t.record, t.payload FROM tasks t WHERE t.status >= 5";
  std::vector<std::string> args;
  if (f.status != pb::TASK_STATUS_UNSPECIFIED) absl::StrAppend(&sql, " AND t.status = ", static_cast<int>(f.status));
  if (f.owner.has_value()) {
    absl::StrAppend(&sql, " AND t.owner = ?");
    args.push_back(*f.owner);
  }
  if (!f.task_type.empty()) {
    absl::StrAppend(&sql, " AND t.task_type = ?");
    args.push_back(f.task_type);
  }
  if (!f.worker_device_id.empty()) {
    absl::StrAppend(&sql, " AND t.worker_device_id = ?");
    args.push_back(f.worker_device_id);
  }
  if (!f.parent_task_id.empty()) {
    absl::StrAppend(&sql, " AND t.parent_task_id = ?");
    args.push_back(f.parent_task_id);
  }
  absl::StrAppend(&sql, " ORDER BY t.sequence DESC LIMIT ", std::max(f.limit, 0));
  absl::MutexLock lock(&conn_->mu());
  Statement q(conn_->db(), sql.c_str());
  if (!q.ok()) return conn_->Error("list tasks");
  for (size_t i = 0; i < args.size(); ++i) BindText(q.get(), static_cast<int>(i + 1), args[i]);
  return conn_->ParseRows(q.get(), "list tasks");
}

absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> SqliteTaskStore::FindByIdempotencyKey(
    const std::string& owner, const std::string& key, const std::string& parent_task_id) {
  absl::MutexLock lock(&conn_->mu());
  sqlite3_stmt* q = conn_->Prepared(
      "SELECT task_id, status FROM tasks WHERE owner = ? AND parent_task_id = ? AND idempotency_key = ?"
      " AND idempotency_key != '' ORDER BY sequence LIMIT 1");
  if (q == nullptr) return conn_->Error("prepare");
  BindText(q, 1, owner);
  BindText(q, 2, parent_task_id);
  BindText(q, 3, key);
  const int rc = sqlite3_step(q);
  absl::StatusOr<std::optional<std::pair<std::string, pb::TaskStatus>>> out = std::nullopt;
  if (rc == SQLITE_ROW) {
    out = std::make_pair(ColumnText(q, 0), static_cast<pb::TaskStatus>(sqlite3_column_int(q, 1)));
  } else if (rc != SQLITE_DONE) {
    out = conn_->Error("read an idempotency key");
  }
  sqlite3_reset(q);
  return out;
}

absl::StatusOr<std::vector<FinishedRef>> SqliteTaskStore::FinishedBefore(int64_t cutoff_ms, size_t limit) {
  absl::MutexLock lock(&conn_->mu());
  Statement q(conn_->db(),
              "SELECT task_id, task_type, status FROM tasks WHERE finished_at_ms > 0 AND finished_at_ms < ?"
              " ORDER BY finished_at_ms LIMIT ?");
  if (!q.ok()) return conn_->Error("read finished tasks");
  sqlite3_bind_int64(q.get(), 1, cutoff_ms);
  sqlite3_bind_int64(q.get(), 2, static_cast<int64_t>(limit));
  std::vector<FinishedRef> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    out.push_back(FinishedRef{ColumnText(q.get(), 0), ColumnText(q.get(), 1),
                              static_cast<pb::TaskStatus>(sqlite3_column_int(q.get(), 2))});
  }
  if (rc != SQLITE_DONE) return conn_->Error("read finished tasks");
  return out;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> SqliteTaskStore::ReadPayloads(
    const std::vector<std::string>& task_ids) {
  absl::MutexLock lock(&conn_->mu());
  sqlite3_stmt* q = conn_->Prepared("SELECT payload FROM tasks WHERE task_id = ?");
  if (q == nullptr) return conn_->Error("prepare");
  absl::flat_hash_map<std::string, std::string> out;
  for (const std::string& id : task_ids) {
    BindText(q, 1, id);
    const int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
      const void* data = sqlite3_column_blob(q, 0);
      out[id] = data == nullptr ? std::string() : std::string(static_cast<const char*>(data), sqlite3_column_bytes(q, 0));
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return conn_->Error("read payloads");
  }
  return out;
}

}  // namespace rc::coordinator
