#pragma once
// Persistence of published JavaScript tasks (DESIGN.md "JavaScript tasks"): every version
// of every name (its code and its JsTask metadata), and per name its owner and the next
// version number, kept after a remove so a number is never given twice. The registry
// (coordinator/core/js_tasks.h) loads the metadata at start and reads code on demand.
//
// Publishes are rare: each write is synchronous and durable when it returns. The SQLite
// implementation shares the task store's connection (its mutex; the database is opened
// exclusively), so a write waits for a task commit in progress and vice versa.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "retire_cluster/v1/client_service.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

class SqliteConnection;

// One name: who owns it and the version its next publish gets.
struct JsTaskName {
  std::string name;
  std::string owner;
  int32_t next_version = 1;
};

// What Load returns: every name, and every stored version's metadata (code left out),
// ordered by name and version.
struct JsTaskCatalog {
  std::vector<JsTaskName> names;
  std::vector<pb::JsTask> versions;
};

class JsTaskStore {
 public:
  virtual ~JsTaskStore() = default;
  // Errors: UNAVAILABLE / DATA_LOSS naming the store.
  virtual absl::StatusOr<JsTaskCatalog> Load() = 0;
  // The code of one version; NOT_FOUND when it is not stored.
  virtual absl::StatusOr<std::string> ReadCode(const std::string& name, int32_t version) = 0;
  // Stores version `meta` (its code field ignored: `code` is stored) and sets the name's
  // owner (on its first version) and next version, in one transaction.
  virtual absl::Status Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) = 0;
  // Removes one version, or every version of `name` (version 0). The name's row stays.
  virtual absl::Status Remove(const std::string& name, int32_t version) = 0;
};

// In this process only (tests, `store: memory`).
class MemoryJsTaskStore final : public JsTaskStore {
 public:
  absl::StatusOr<JsTaskCatalog> Load() override;
  absl::StatusOr<std::string> ReadCode(const std::string& name, int32_t version) override;
  absl::Status Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) override;
  absl::Status Remove(const std::string& name, int32_t version) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, JsTaskName> names_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int32_t>, std::pair<pb::JsTask, std::string>> versions_ ABSL_GUARDED_BY(mu_);
};

// The tables js_tasks and js_task_names of the task database (schema version 4).
class SqliteJsTaskStore final : public JsTaskStore {
 public:
  // `conn` (SqliteTaskStore::connection()) outlives this store.
  explicit SqliteJsTaskStore(SqliteConnection* conn) : conn_(conn) {}
  absl::StatusOr<JsTaskCatalog> Load() override;
  absl::StatusOr<std::string> ReadCode(const std::string& name, int32_t version) override;
  absl::Status Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) override;
  absl::Status Remove(const std::string& name, int32_t version) override;

 private:
  SqliteConnection* const conn_;
};

}  // namespace rc::coordinator
