#pragma once
// Small SQLite helpers shared by the store's files.

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rc::coordinator::sqlite_util {

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

inline absl::Status SqlError(sqlite3* db, const std::string& path, absl::string_view what) {
  const int code = sqlite3_errcode(db);
  std::string msg = absl::StrCat(path, ": ", what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
    return absl::DataLossError(absl::StrCat(msg, " (not a usable retire-cluster database; move it aside)"));
  }
  return absl::UnavailableError(msg);
}

}  // namespace rc::coordinator::sqlite_util
