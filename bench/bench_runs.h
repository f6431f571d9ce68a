#pragma once
// The two measurements of retire-cluster-bench through the C++ SDK: throughput with its
// async calls (SubmitAsync batches under load; WaitAsync shares one result stream),
// latency with SubmitAndWait (or the async pair, RunOptions::one_call).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"

namespace rc::bench {

struct RunOptions {
  int64_t tasks = 10000;
  int64_t in_flight = 10000;  // throughput: most tasks submitted and not yet finished
  int64_t warmup = 50;        // round trips before measuring (not counted)
  std::string type = "echo";  // "js": each payload is the input of a module returning it
  int64_t payload_bytes = 16;
  std::optional<std::string> fixed_payload;  // then results are not compared
  // Latency: each round trip is one SubmitAndWait call (true) or a SubmitAsync and then a
  // WaitAsync on the shared stream (false), as the throughput run does.
  bool one_call = true;
};

struct RunResult {
  int64_t succeeded = 0;
  int64_t failed = 0;
  double seconds = 0;
  std::vector<double> latency_ms;  // submit -> result, per task
  std::string first_error;
};

// Submits `tasks` as fast as the SDK takes them, at most `in_flight` outstanding, and
// waits for every result; each is checked (an echo must return its own payload).
RunResult Throughput(client::Client& client, const RunOptions& options);
// `tasks` sequential submit -> result round trips (after `warmup` uncounted ones).
RunResult Latency(client::Client& client, const RunOptions& options);

// The p-th quantile (0..1): the sample at index round(p * (n - 1)) in sorted order; 0 for
// no samples. Reorders `v`.
double Percentile(std::vector<double>& v, double p);

}  // namespace rc::bench
