#include "coordinator/store/js_task_store.h"

#include <sqlite3.h>

#include <iterator>

#include "absl/strings/str_cat.h"
#include "coordinator/store/sqlite_connection.h"

namespace rc::coordinator {
namespace {

absl::Status NoVersion(const std::string& name, int32_t version) {
  return absl::NotFoundError(absl::StrCat("published task '", name, "' has no version ", version));
}

void BindText(sqlite3_stmt* st, int col, const std::string& v) {
  sqlite3_bind_text(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

void BindBlob(sqlite3_stmt* st, int col, const std::string& v) {
  sqlite3_bind_blob(st, col, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

}  // namespace

// ---- Memory ----

absl::StatusOr<JsTaskCatalog> MemoryJsTaskStore::Load() {
  absl::MutexLock lock(&mu_);
  JsTaskCatalog c;
  for (const auto& [name, n] : names_) c.names.push_back(n);
  for (const auto& [key, v] : versions_) c.versions.push_back(v.first);
  return c;
}

absl::StatusOr<std::string> MemoryJsTaskStore::ReadCode(const std::string& name, int32_t version) {
  absl::MutexLock lock(&mu_);
  auto it = versions_.find({name, version});
  if (it == versions_.end()) return NoVersion(name, version);
  return it->second.second;
}

absl::Status MemoryJsTaskStore::Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) {
  absl::MutexLock lock(&mu_);
  pb::JsTask stored = meta;
  stored.clear_code();
  versions_[{meta.name(), meta.version()}] = {std::move(stored), code};
  auto [it, inserted] = names_.emplace(name.name, name);
  if (!inserted) it->second.next_version = name.next_version;
  return absl::OkStatus();
}

absl::Status MemoryJsTaskStore::Remove(const std::string& name, int32_t version) {
  absl::MutexLock lock(&mu_);
  for (auto it = versions_.lower_bound({name, 0}); it != versions_.end() && it->first.first == name;) {
    it = (version == 0 || it->first.second == version) ? versions_.erase(it) : std::next(it);
  }
  return absl::OkStatus();
}

// ---- SQLite ----

absl::StatusOr<JsTaskCatalog> SqliteJsTaskStore::Load() {
  absl::MutexLock lock(&conn_->mu());
  JsTaskCatalog c;
  sqlite3_stmt* names = conn_->Prepared("SELECT name, owner, next_version FROM js_task_names ORDER BY name");
  if (names == nullptr) return conn_->Error("load published tasks");
  int rc;
  while ((rc = sqlite3_step(names)) == SQLITE_ROW) {
    JsTaskName n;
    n.name = reinterpret_cast<const char*>(sqlite3_column_text(names, 0));
    n.owner = reinterpret_cast<const char*>(sqlite3_column_text(names, 1));
    n.next_version = sqlite3_column_int(names, 2);
    c.names.push_back(std::move(n));
  }
  sqlite3_reset(names);
  if (rc != SQLITE_DONE) return conn_->Error("load published tasks");
  sqlite3_stmt* versions = conn_->Prepared("SELECT meta FROM js_tasks ORDER BY name, version");
  if (versions == nullptr) return conn_->Error("load published tasks");
  while ((rc = sqlite3_step(versions)) == SQLITE_ROW) {
    pb::JsTask t;
    if (!t.ParseFromArray(sqlite3_column_blob(versions, 0), sqlite3_column_bytes(versions, 0))) {
      sqlite3_reset(versions);
      return absl::DataLossError(absl::StrCat(conn_->path(), ": a published task's record does not parse"));
    }
    c.versions.push_back(std::move(t));
  }
  sqlite3_reset(versions);
  if (rc != SQLITE_DONE) return conn_->Error("load published tasks");
  return c;
}

absl::StatusOr<std::string> SqliteJsTaskStore::ReadCode(const std::string& name, int32_t version) {
  absl::MutexLock lock(&conn_->mu());
  sqlite3_stmt* q = conn_->Prepared("SELECT code FROM js_tasks WHERE name = ? AND version = ?");
  if (q == nullptr) return conn_->Error("read a published task");
  BindText(q, 1, name);
  sqlite3_bind_int(q, 2, version);
  const int rc = sqlite3_step(q);
  absl::StatusOr<std::string> out = NoVersion(name, version);
  if (rc == SQLITE_ROW) {
    const void* data = sqlite3_column_blob(q, 0);
    out = std::string(static_cast<const char*>(data), sqlite3_column_bytes(q, 0));
  } else if (rc != SQLITE_DONE) {
    out = conn_->Error("read a published task");
  }
  sqlite3_reset(q);
  return out;
}

absl::Status SqliteJsTaskStore::Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) {
  pb::JsTask stored = meta;
  stored.clear_code();
  const std::string record = stored.SerializeAsString();
  absl::MutexLock lock(&conn_->mu());
  // The task writer holds this mutex for a whole transaction, so none is open here.
  if (absl::Status s = conn_->Step("BEGIN IMMEDIATE"); !s.ok()) return s;
  sqlite3_stmt* put = conn_->Prepared(
      "INSERT INTO js_tasks(name, version, code, sha256, description, meta, owner, created_at_ms)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  sqlite3_stmt* claim = conn_->Prepared(
      "INSERT INTO js_task_names(name, owner, next_version) VALUES (?, ?, ?)"
      " ON CONFLICT(name) DO UPDATE SET next_version = excluded.next_version");
  auto fail = [&](absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu()) {
    absl::Status s = conn_->Error(what);
    conn_->Exec("ROLLBACK").IgnoreError();
    return s;
  };
  if (put == nullptr || claim == nullptr) return fail("publish: prepare");
  BindText(put, 1, meta.name());
  sqlite3_bind_int(put, 2, meta.version());
  BindBlob(put, 3, code);
  BindText(put, 4, meta.sha256());
  BindText(put, 5, meta.description());
  BindBlob(put, 6, record);
  BindText(put, 7, meta.owner());
  sqlite3_bind_int64(put, 8, meta.created_at_ms());
  int rc = sqlite3_step(put);
  sqlite3_reset(put);
  if (rc != SQLITE_DONE) return fail("publish: write");
  BindText(claim, 1, name.name);
  BindText(claim, 2, name.owner);
  sqlite3_bind_int(claim, 3, name.next_version);
  rc = sqlite3_step(claim);
  sqlite3_reset(claim);
  if (rc != SQLITE_DONE) return fail("publish: write");
  // synchronous=FULL: durable once COMMIT returns.
  if (absl::Status s = conn_->Step("COMMIT"); !s.ok()) {
    conn_->Exec("ROLLBACK").IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteJsTaskStore::Remove(const std::string& name, int32_t version) {
  absl::MutexLock lock(&conn_->mu());
  sqlite3_stmt* del = conn_->Prepared("DELETE FROM js_tasks WHERE name = ? AND (?2 = 0 OR version = ?2)");
  if (del == nullptr) return conn_->Error("remove a published task");
  BindText(del, 1, name);
  sqlite3_bind_int(del, 2, version);
  const int rc = sqlite3_step(del);
  sqlite3_reset(del);
  if (rc != SQLITE_DONE) return conn_->Error("remove a published task");
  return absl::OkStatus();
}

}  // namespace rc::coordinator
