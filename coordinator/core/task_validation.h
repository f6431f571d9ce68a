#pragma once
// Submit-time validation as a pure function: every rule a TaskSpec must meet before it
// is accepted, with errors naming the field.

#include "absl/status/status.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

// Size limits on what a client may store in one task (config keys of the same names).
// They bound the coordinator's memory per task, which holds every task in memory.
struct TaskLimits {
  size_t max_payload_bytes = 1 << 20;
  size_t max_metadata_bytes = 64 << 10;  // keys and values together
  int max_required_tags = 32;
  int max_dependencies = 10000;  // entries of `after` (a reduce may wait for a whole batch)
};

// INVALID_ARGUMENT naming the first offending field (and the limit, for sizes). On OK,
// fills defaults in *spec (priority NORMAL, payload "{}", dependency condition OK) so
// stored records are explicit. Whether a dependency exists, and whether an after_index
// names an earlier entry of its batch, is the submit's check (it needs the tasks).
absl::Status ValidateAndNormalize(::retire_cluster::v1::TaskSpec* spec, const TaskLimits& limits = TaskLimits());

}  // namespace rc::coordinator
