#pragma once
// The parent of the fan-out benchmark (retire-cluster-fanout-bench --fanout-parent N): runs
// as a real task, reaches the cluster through $RETIRE_CLUSTER_COORDINATOR and
// $RETIRE_CLUSTER_TOKEN (the worker's socket), submits N echo children {"i": k} with
// SubmitBatch, at most `window` unfinished at once (the coordinator's
// max_children_per_task), waits for every one on one WaitTasks stream (WaitAsync) and
// sums their results' "i".

#include <cstdint>
#include <string>

#include "client/client.h"

namespace rc::bench {

struct FanoutResult {
  int64_t children = 0;   // asked for
  int64_t succeeded = 0;  // ended success with a result holding "i"
  int64_t failed = 0;     // refused, ended otherwise, or lost
  int64_t sum = 0;        // of the succeeded children's "i"
  double seconds = 0;     // first submit to last result
  std::string first_error;
};

// `batch` children per SubmitBatch call; gives up on children still open after `timeout`.
FanoutResult RunFanoutParent(client::Client& client, int64_t children, int64_t window, int64_t batch,
                             absl::Duration timeout);

}  // namespace rc::bench
