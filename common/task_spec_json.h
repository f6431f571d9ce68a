#pragma once
// The task a client submits, from its JSON form (the HTTP bridge's POST /tasks body):
// {"task_type", "payload", "priority", "requirements": {...}, "metadata", "idempotency_key"}.
// Strict: unknown fields and wrong types are refused, naming the field.

#include <cstdint>
#include <limits>

#include "absl/status/statusor.h"
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

// INVALID_ARGUMENT naming the field ("requirements.min_cpu_cores: expected an integer").
absl::StatusOr<::retire_cluster::v1::TaskSpec> TaskSpecFromJson(const nlohmann::json& j);

}  // namespace rc
