#pragma once
// The task a client submits, from its JSON form (the HTTP bridge's POST /tasks body):
// {"task_type", "payload", "priority", "requirements": {...}, "metadata", "idempotency_key",
//  "after": ["task-..", {"task_id", "condition"}, {"after_index", "condition"}], "parent_close"}
// (DESIGN.md "Workflows": condition ok | any | notok, parent_close cancel | abandon).
// Strict: unknown fields and wrong types are refused, naming the field.

#include <cstdint>
#include <limits>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"

namespace rc {

// The integer fields of a task spec and the values they take. Checked where text becomes
// a number (this JSON reader, the CLI's flags), before anything narrows it to the
// proto's int32: 4294967301 must be refused, never stored as 5. The coordinator checks
// the same ranges again (coordinator/core/task_validation.cc) for specs that arrive as protobuf.
struct IntRange {
  int64_t min;
  int64_t max;
};
inline constexpr IntRange kMinCpuCoresRange{0, std::numeric_limits<int32_t>::max()};
inline constexpr IntRange kMaxRetriesRange{0, 100};
// A batch entry's `after_index` (a batch holds at most 10000 entries).
inline constexpr IntRange kAfterIndexRange{0, 9999};

// Workflow names as JSON and the CLI spell them. The parsers answer INVALID_ARGUMENT
// "expected ok, any or notok, got 'x'" (the caller prefixes the field or flag).
absl::string_view DependencyConditionName(::retire_cluster::v1::DependencyCondition c);  // "ok" for UNSPECIFIED
absl::StatusOr<::retire_cluster::v1::DependencyCondition> ParseDependencyCondition(absl::string_view name);
absl::string_view ParentCloseName(::retire_cluster::v1::ParentClose p);  // "cancel" for UNSPECIFIED
absl::StatusOr<::retire_cluster::v1::ParentClose> ParseParentClose(absl::string_view name);

// INVALID_ARGUMENT naming the field ("requirements.min_cpu_cores: expected an integer").
absl::StatusOr<::retire_cluster::v1::TaskSpec> TaskSpecFromJson(const nlohmann::json& j);

}  // namespace rc
