#pragma once
// The `js` task's payload (DESIGN.md "JavaScript tasks") as pure functions: what a client
// may submit, what the coordinator stores once a published name is resolved, and the rules
// for published names. Errors are INVALID_ARGUMENT naming `payload.<field>` (or the field
// given), like every submit-time check.
//
// Submitted: {"code": TEXT, "input"?, "memory_mb"?} or {"name": NAME, "version"?, "input"?,
// "memory_mb"?}. Stored: a code payload as submitted, or a resolved one
// {"name", "version", "sha256", "code", "input", "memory_mb"?}.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json_view.h"

namespace rc::coordinator {

inline constexpr absl::string_view kJsTaskType = "js";
inline constexpr int kMinJsMemoryMb = 1;
inline constexpr int kMaxJsMemoryMb = 2048;
inline constexpr size_t kMaxJsTaskNameLength = 100;

// A submitted js payload, checked.
struct JsPayload {
  std::optional<std::string> code;  // exactly one of code and name
  std::optional<std::string> name;
  int64_t version = 0;              // with name; 0 = the latest
  Json input = Json::object();      // {} when not given
  std::optional<int64_t> memory_mb;
};

// `text` as a client submitted it (any size: the caller checks max_payload_bytes first).
absl::StatusOr<JsPayload> ParseSubmittedJsPayload(absl::string_view text);

// The stored payload of published task `name` version `version`.
std::string ResolvedJsPayload(const JsPayload& submitted, const std::string& name, int64_t version,
                              const std::string& sha256, const std::string& code);

// The submit-time check of the core (task_validation.cc) on what reaches it: a code
// payload, or one resolved by the client API. A bare name that reached the core was not
// resolved: refused, naming payload.code.
absl::Status CheckStoredJsPayload(absl::string_view text);

// Names of published tasks: 1..100 of [A-Za-z0-9._-], not starting with '.' or '-'.
// INVALID_ARGUMENT "<field>: ...".
absl::Status CheckJsTaskName(absl::string_view field, absl::string_view name);

}  // namespace rc::coordinator
