#pragma once
// Published JavaScript tasks (DESIGN.md "JavaScript tasks"): the registry of named,
// versioned `js` modules and the resolution of a submitted {"name": ...} payload into the
// code it runs. The metadata of every version is held in memory (loaded at start); code
// is read from the JsTaskStore, the latest version's kept in memory once read.
//
// Rules (I16 contract): names 1..100 of [A-Za-z0-9._-] not starting with '.' or '-';
// code 1 byte .. 512 KiB of UTF-8 with a JSDoc @task tag; versions 1, 2, ... per name,
// never reused; publishing the latest version's code again stores nothing (unchanged); a
// name belongs to its first publisher, and only it or an admin may publish or remove it.
// Who may call what at all (roles, task tokens) is the client API's check.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "coordinator/store/js_task_store.h"
#include "retire_cluster/v1/client_service.pb.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

inline constexpr size_t kMaxJsCodeBytes = 512 << 10;

// Who publishes or removes: its principal's name, and whether it is an admin (any name).
struct JsPublisher {
  std::string name;
  bool admin = false;
};

class JsTaskRegistry {
 public:
  // `store` and `clock` outlive the registry. A resolved payload larger than
  // `max_payload_bytes` is refused (the submit's own limit).
  JsTaskRegistry(JsTaskStore* store, Clock* clock, size_t max_payload_bytes);

  // Reads every name and version's metadata; once, before serving. The store's errors.
  absl::Status Load();

  struct Published {
    pb::JsTask task;  // code left out; `versions` set
    bool unchanged = false;
  };
  // Stores `code` as a new version of `name` ("" = the JSDoc @task name). INVALID_ARGUMENT
  // "code: ..." / "name: ..."; PERMISSION_DENIED naming the owner for another
  // submitter's name; the store's error (nothing changed) when it cannot write.
  absl::StatusOr<Published> Publish(const std::string& code, const std::string& name, const JsPublisher& by);
  // The latest version of every name that has one, by name; code left out.
  std::vector<pb::JsTask> List() const;
  // One version with its code (version 0: the latest). NOT_FOUND "no published task 'x'"
  // or "published task 'x' has no version N"; INVALID_ARGUMENT for a negative version.
  absl::StatusOr<pb::JsTask> Get(const std::string& name, int32_t version) const;
  // Removes one version or every one (version 0); how many went. NOT_FOUND as Get,
  // PERMISSION_DENIED as Publish. Tasks already resolved keep their code (it is in their
  // payload).
  absl::StatusOr<int32_t> Remove(const std::string& name, int32_t version, const JsPublisher& by);

  // For a `js` task naming a published task, replaces the payload with the resolved one
  // (name, version, sha256, code, input, memory_mb); a code payload is checked and kept.
  // Other task types pass untouched, and so does a payload over max_payload_bytes (the
  // submit refuses it). INVALID_ARGUMENT naming payload.<field>; NOT_FOUND
  // "payload.name: no published task 'x'" or "payload.name: published task 'x' has no
  // version N"; INVALID_ARGUMENT "payload: ..." when the resolved payload passes
  // max_payload_bytes.
  absl::Status Resolve(pb::TaskSpec* spec) const;

 private:
  struct Entry {
    std::string owner;
    int32_t next_version = 1;
    std::map<int32_t, pb::JsTask> versions;  // code left out
    std::optional<std::string> latest_code;  // the latest version's, once read
  };

  const Entry* FindLocked(const std::string& name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The entry's version (0: latest) or NOT_FOUND worded with `prefix`.
  absl::StatusOr<const pb::JsTask*> VersionLocked(const std::string& name, int32_t version,
                                                  absl::string_view prefix) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> CodeLocked(const std::string& name, int32_t version) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status OwnedLocked(const std::string& name, const Entry& e, const JsPublisher& by) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  JsTaskStore* const store_;
  Clock* const clock_;
  const size_t max_payload_bytes_;
  // Held across store writes: publishes are rare, and a publish is answered only once
  // durable, in the order the registry changed.
  mutable absl::Mutex mu_;
  // latest_code is filled by reads: mutable.
  mutable std::map<std::string, Entry> names_ ABSL_GUARDED_BY(mu_);
};

// Lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(absl::string_view bytes);

}  // namespace rc::coordinator
