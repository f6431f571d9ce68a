#pragma once
// The task a client submits, from its JSON form (the HTTP bridge's POST /tasks body):
// {"task_type", "payload", "priority", "requirements": {...}, "metadata", "idempotency_key"}.
// Strict: unknown fields and wrong types are refused, naming the field.

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"

namespace rc {

// INVALID_ARGUMENT naming the field ("requirements.min_cpu_cores: expected an integer").
absl::StatusOr<::retire_cluster::v1::TaskSpec> TaskSpecFromJson(const nlohmann::json& j);

}  // namespace rc
