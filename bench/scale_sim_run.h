#pragma once
// One scale-simulator run against a coordinator: connect a fleet of simulated workers,
// confirm through the client SDK that all are online, then measure an idle window
// (heartbeats only) and a dispatch window (echo tasks submitted at a fixed rate).

#include <sys/types.h>

#include <string>

#include "absl/time/time.h"
#include "common/json_view.h"

namespace rc::bench {

struct SimConfig {
  std::string target;          // HOST:PORT of the coordinator
  pid_t coordinator_pid = -1;  // for CPU and RSS; -1: not measured
  int workers = 1000;
  int slots = 4;
  int streams_per_channel = 100;
  absl::Duration window = absl::Seconds(10);  // each of the two windows
  double tasks_per_second = 1000;             // 0 skips the dispatch window
  int submitters = 2;                         // client threads submitting batches
  absl::Duration connect_timeout = absl::Seconds(120);
  std::string id_prefix = "sim-";
};

// Runs the phases and returns the report: "connected", "connect_seconds" (all streams
// registered), "listed_online" (ListWorkers), then per window ("idle", "dispatch"):
// "coordinator_cpu_cores" (CPU seconds / wall seconds), "coordinator_rss_mb" (highest
// sample), "heartbeats_per_second" (sent), "simulator_cpu_cores", "listed_online" and
// "oldest_heartbeat_seconds" (the coordinator's view just after it); the dispatch window
// adds "submitted", "dispatched_per_second" (assignments received), "completed" (results
// acknowledged, after a bounded drain) and "completed_per_second". *ok is false when a
// worker did not connect or went offline, or a submitted task was lost, failed or came
// back with a result that is not its payload; "errors" says which. Timing never fails it.
Json RunScaleSim(const SimConfig& config, bool* ok);

}  // namespace rc::bench
