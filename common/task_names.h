#pragma once
// Lower-case names of enums as they appear in JSON, the CLI and DESIGN.md.

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc {

namespace pb = ::retire_cluster::v1;

absl::string_view PriorityName(pb::Priority p);  // "normal" for UNSPECIFIED
// INVALID_ARGUMENT naming the accepted values for anything else.
absl::StatusOr<pb::Priority> ParsePriority(absl::string_view name);

absl::string_view StatusName(pb::TaskStatus s);
// INVALID_ARGUMENT naming the accepted values for anything else.
absl::StatusOr<pb::TaskStatus> ParseStatus(absl::string_view name);
bool IsTerminal(pb::TaskStatus s);

absl::string_view WorkerStatusName(pb::WorkerStatus s);

}  // namespace rc
