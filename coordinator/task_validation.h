#pragma once
// Submit-time validation as a pure function: every rule a TaskSpec must meet before it
// is accepted, with errors naming the field.

#include "absl/status/status.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

// INVALID_ARGUMENT naming the first offending field. On OK, fills defaults in *spec
// (priority NORMAL, payload "{}") so stored records are explicit.
absl::Status ValidateAndNormalize(::retire_cluster::v1::TaskSpec* spec);

}  // namespace rc::coordinator
