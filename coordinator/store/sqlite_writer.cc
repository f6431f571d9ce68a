#include "coordinator/store/sqlite_writer.h"

#include <sqlite3.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

constexpr int kCommitTries = 5;
// A commit of at most this many records whose callbacks this thread may run itself.
constexpr size_t kSmallCommitRecords = 8;

}  // namespace

SqliteWriter::SqliteWriter(SqliteConnection* conn) : conn_(conn), thread_([this] { Loop(); }) {}

void SqliteWriter::Close() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock lock(&close_mu_);
  if (thread_.joinable()) thread_.join();
}

void SqliteWriter::Enqueue(std::vector<TaskRecord> puts, std::vector<std::string> deletes,
                           std::function<void(absl::Status)> done, bool hurry) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      if (pending_.empty()) unhurried_since_ = absl::Now();
      hurried_ = hurried_ || hurry;
      pending_.push_back(Op{std::move(puts), std::move(deletes), std::move(done)});
      return;
    }
  }
  if (done) done(absl::UnavailableError(absl::StrCat(conn_->path(), ": task store is closing")));
}

void SqliteWriter::Loop() {
  while (true) {
    std::deque<Op> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](SqliteWriter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->stopping_ || !w->pending_.empty(); },
          this));
      if (pending_.empty()) return;  // stopping, and everything is committed
      // Only unhurried writes: give a hurried one (the next submit, say) the chance to
      // share their commit.
      if (!hurried_ && !stopping_) {
        mu_.AwaitWithDeadline(absl::Condition(
                                  +[](SqliteWriter* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) {
                                    return w->stopping_ || w->hurried_;
                                  },
                                  this),
                              unhurried_since_ + kUnhurriedDelay);
      }
      hurried_ = false;
      batch.swap(pending_);
    }
    size_t records_in_batch = 0;
    for (const Op& op : batch) records_in_batch += op.puts.size() + op.deletes.size();
    // A failed commit (disk full, I/O error) is retried before anyone is told: callers
    // are only answered OK for what is on disk, and errors only after several tries.
    absl::Status status;
    absl::Duration wait = absl::Milliseconds(50);
    for (int attempt = 1; attempt <= kCommitTries; ++attempt) {
      {
        absl::MutexLock lock(&conn_->mu());
        const absl::Time start = absl::Now();
        int64_t records = 0, bytes = 0;
        status = Commit(batch, &records, &bytes);
        commit_latency_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
        if (status.ok()) {
          records_written_ += records;
          bytes_written_ += bytes;
          int pages = 0, high = 0;
          if (sqlite3_db_status(conn_->db(), SQLITE_DBSTATUS_CACHE_WRITE, &pages, &high, 0) == SQLITE_OK) {
            pages_written_ = pages;
          }
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
      // A small commit with nothing queued behind it (a quiet cluster's round trip) runs
      // its callbacks here: the hand-off to the completion thread cost ~16 us of the
      // round trip, and nobody waits for this thread meanwhile. Anything else is posted,
      // so that the next commit never waits for the last one's callbacks.
      if (!pending_.empty() || records_in_batch > kSmallCommitRecords) post = post_;
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

bool SqliteWriter::PostCompletionsTo(std::function<void(std::function<void()>)> post) {
  absl::MutexLock lock(&mu_);
  post_ = std::move(post);
  return post_ != nullptr;
}

StoreWriteStats SqliteWriter::write_stats() const {
  return StoreWriteStats{records_written_.load(), bytes_written_.load(), pages_written_.load(), conn_->page_size()};
}

absl::Status SqliteWriter::Commit(std::deque<Op>& batch, int64_t* records, int64_t* bytes) {
  if (absl::Status s = conn_->Step("BEGIN IMMEDIATE"); !s.ok()) return s;
  // An unfinished task's update sets no indexed column (finished_at_ms stays 0), so it
  // rewrites its row only; the finishing one (`put_final`, one statement) also moves its
  // tasks_finished entry. A finished record is final, so put_final never runs twice for
  // one task with different times.
  constexpr absl::string_view kPut =
      "INSERT INTO tasks(task_id, status, finished_at_ms, record, sequence, owner, task_type, worker_device_id,"
      " idempotency_key, payload, parent_task_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET"
      " status = excluded.status, record = excluded.record, worker_device_id = excluded.worker_device_id,"
      " payload = coalesce(excluded.payload, tasks.payload)";
  static const std::string* const kPutFinal =
      new std::string(absl::StrCat(kPut, ", finished_at_ms = excluded.finished_at_ms"));
  sqlite3_stmt* put_pending = conn_->Prepared(kPut.data());
  sqlite3_stmt* put_final = conn_->Prepared(kPutFinal->c_str());
  sqlite3_stmt* del = conn_->Prepared("DELETE FROM tasks WHERE task_id = ?");
  if (put_pending == nullptr || put_final == nullptr || del == nullptr) {
    absl::Status s = conn_->Error("prepare");
    conn_->Exec("ROLLBACK").IgnoreError();
    return s;
  }
  auto fail = [&](absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu()) {
    absl::Status s = conn_->Error(what);
    conn_->Exec("ROLLBACK").IgnoreError();
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
  absl::flat_hash_map<absl::string_view, const TaskRecord*> last;
  absl::flat_hash_map<absl::string_view, const std::string*> payload_of;
  for (const Op& op : batch) {
    for (const TaskRecord& r : op.puts) {
      last[r.task_id] = &r;
      if (!r.payload.empty()) payload_of[r.task_id] = &r.payload;
    }
  }
  for (const Op& op : batch) {
    for (const TaskRecord& r : op.puts) {
      if (last[r.task_id] != &r) continue;
      ++*records;
      sqlite3_stmt* const put = r.finished_at_ms != 0 ? put_final : put_pending;
      bind_text(put, 1, r.task_id);
      bind_int(put, 2, r.status);
      bind_int(put, 3, r.finished_at_ms);
      bind_blob(put, 4, r.record);
      bind_int(put, 5, static_cast<int64_t>(r.sequence));
      bind_text(put, 6, r.owner);
      bind_text(put, 7, r.task_type);
      bind_text(put, 8, r.worker_device_id);
      bind_text(put, 9, r.idempotency_key);
      auto p = payload_of.find(r.task_id);
      if (p != payload_of.end()) {
        bind_blob(put, 10, *p->second);
      } else {
        sqlite3_bind_null(put, 10);  // keeps the stored payload (none stored: empty)
      }
      bind_text(put, 11, r.parent_task_id);  // set on insert only: a task's parent never changes
      const int rc = sqlite3_step(put);
      sqlite3_reset(put);
      if (rc != SQLITE_DONE) return fail("write");
    }
    for (const std::string& id : op.deletes) {
      bind_text(del, 1, id);
      const int rc = sqlite3_step(del);
      sqlite3_reset(del);
      if (rc != SQLITE_DONE) return fail("delete");
    }
  }
  if (absl::Status s = conn_->Step("COMMIT"); !s.ok()) {
    conn_->Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

}  // namespace rc::coordinator
