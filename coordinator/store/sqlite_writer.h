#pragma once
// The write side of a SqliteTaskStore: one thread owns every write and commits whatever
// has queued up while the previous transaction was committing (group commit): under
// load one fsync covers many submits and transitions, so durability costs little
// throughput. Unhurried writes (TaskStore::WriteUnhurried) wait up to kUnhurriedDelay
// for a hurried one to ride with, so that an idle cluster spends one fsync per round
// trip (the submit's) rather than three. The writer only writes: a commit's callbacks
// go to the thread given to PostCompletionsTo (or run on the writer when none is given),
// except those of a small commit with nothing queued behind it, which the writer runs
// itself (a quiet cluster's round trip then skips a thread hand-off).

#include <atomic>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/histogram.h"
#include "coordinator/store/sqlite_connection.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

class SqliteWriter {
 public:
  // Writes through `conn`, which must outlive this writer. The thread starts here.
  explicit SqliteWriter(SqliteConnection* conn);
  // Commits everything queued, then stops.
  ~SqliteWriter() { Close(); }
  SqliteWriter(const SqliteWriter&) = delete;
  SqliteWriter& operator=(const SqliteWriter&) = delete;

  // How long unhurried writes may wait for a hurried one (bounds how late a worker's
  // result is acknowledged on an idle cluster).
  static constexpr absl::Duration kUnhurriedDelay = absl::Milliseconds(2);

  // Queues `puts` and `deletes` for the next commit; `done` is answered after it (an
  // error after several tries), or at once with UNAVAILABLE when closing. Unless
  // `hurry`, the commit may wait up to kUnhurriedDelay for a hurried write.
  void Enqueue(std::vector<TaskRecord> puts, std::vector<std::string> deletes, std::function<void(absl::Status)> done,
               bool hurry = true);
  // Commits everything queued, then joins the thread. Later writes are refused.
  void Close();
  // See TaskStore::PostCompletionsTo.
  bool PostCompletionsTo(std::function<void(std::function<void()>)> post);
  const Histogram* commit_latency() const { return &commit_latency_; }
  StoreWriteStats write_stats() const;

 private:
  struct Op {
    std::vector<TaskRecord> puts;
    std::vector<std::string> deletes;
    std::function<void(absl::Status)> done;
  };

  void Loop();
  // One transaction for the whole batch.
  // Records are stored without their payload, which has a column of its own, written
  // with a task's first record and kept when a later one leaves it out. A failed commit is
  // tried again with the same batch (Commit only reads it).
  // Adds the records written and the bytes bound to `*records` and `*bytes`.
  absl::Status Commit(std::deque<Op>& batch, int64_t* records, int64_t* bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu());

  SqliteConnection* const conn_;
  absl::Mutex mu_;
  std::deque<Op> pending_ ABSL_GUARDED_BY(mu_);
  bool hurried_ ABSL_GUARDED_BY(mu_) = false;      // a hurried op is pending
  absl::Time unhurried_since_ ABSL_GUARDED_BY(mu_);  // when the oldest pending op came
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(std::function<void()>)> post_ ABSL_GUARDED_BY(mu_);  // see PostCompletionsTo
  absl::Mutex close_mu_;  // serializes joining the thread
  Histogram commit_latency_;
  // write_stats(), counted after each commit.
  std::atomic<int64_t> records_written_{0};
  std::atomic<int64_t> bytes_written_{0};
  std::atomic<int64_t> pages_written_{0};
  std::thread thread_;  // last: starts once everything above is built
};

}  // namespace rc::coordinator
