#include "coordinator/store/sqlite_task_store.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace rc::coordinator {

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create data dir ", dir, ": ", ec.message()));
  absl::StatusOr<std::unique_ptr<SqliteConnection>> conn =
      SqliteConnection::Open((std::filesystem::path(dir) / "tasks.db").string());
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<SqliteTaskStore>(new SqliteTaskStore(*std::move(conn)));
}

SqliteTaskStore::SqliteTaskStore(std::unique_ptr<SqliteConnection> conn)
    : conn_(std::move(conn)), writer_(std::make_unique<SqliteWriter>(conn_.get())) {}

SqliteTaskStore::~SqliteTaskStore() { Close(); }

void SqliteTaskStore::Close() { writer_->Close(); }

void SqliteTaskStore::Write(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) {
  writer_->Enqueue(std::move(records), {}, std::move(done));
}

void SqliteTaskStore::WriteUnhurried(std::vector<TaskRecord> records, std::function<void(absl::Status)> done) {
  writer_->Enqueue(std::move(records), {}, std::move(done), /*hurry=*/false);
}

void SqliteTaskStore::Delete(std::vector<std::string> task_ids, std::function<void(absl::Status)> done) {
  writer_->Enqueue({}, std::move(task_ids), std::move(done));
}

bool SqliteTaskStore::PostCompletionsTo(std::function<void(std::function<void()>)> post) {
  return writer_->PostCompletionsTo(std::move(post));
}

}  // namespace rc::coordinator
