#pragma once
// The floor of a round trip on this machine (retire-cluster-bench --mode floor, issue 18):
// what one durable 4 KiB write costs on the data dir's disk and what one gRPC exchange costs
// on loopback, measured in the same run as the cluster so the two can be compared.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rc::bench {

struct Quantiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;  // milliseconds
};

// Nearest-rank quantiles of `samples` (reordered).
Quantiles QuantilesOf(std::vector<double>& samples);

struct DiskFloor {
  std::string path;        // the file written (removed afterwards)
  std::string mount;       // its filesystem's mount point, type and source (/proc/self/mountinfo)
  std::string fs_type;
  std::string device;
  Quantiles overwrite_ms;  // pwrite 4 KiB over an already-synced block + fdatasync, back to back
  Quantiles append_ms;     // pwrite 4 KiB at the end of the file + fdatasync (size changes too)
  Quantiles after_idle_ms; // as overwrite_ms, each after sleeping `idle_gap` (not timed)
  double idle_gap_ms = 0;
};

// Writes `samples` 4 KiB blocks (after `warmup` untimed ones) into a new file in `dir`.
// The overwrite figure is the floor: a write-ahead log that is reused after a checkpoint
// (SQLite's WAL) mostly rewrites blocks that exist; a growing file also syncs its size.
// The after-idle figure is what a commit pays when the process slept before it, as a
// sequential round trip's commit does: on a virtual machine whose CPUs halt when idle,
// waking for the disk's answer costs more than when the syncs come back to back.
absl::StatusOr<DiskFloor> MeasureDisk(const std::string& dir, int samples, int warmup, absl::Duration idle_gap);

struct NetworkFloor {
  Quantiles unary_ms;   // one unary call, blocking stub
  Quantiles stream_ms;  // one message out and its reply back on an open bidi stream
};

// Starts a tiny gRPC server (the coordinator's async call queue, async_call.h) on 127.0.0.1 with an
// ephemeral port inside this process and ping-pongs a few bytes with it, `warmup` untimed
// round trips first. The client is a blocking stub: the least a client can do per call.
absl::StatusOr<NetworkFloor> MeasureLoopback(int samples, int warmup);

// Both halves, and what a sequential submit -> result round trip cannot go below.
struct Floor {
  DiskFloor disk;
  NetworkFloor network;
  // One fsync (the submit's commit) + two unary round trips: the client's call (one
  // SubmitAndWait) and the coordinator -> worker -> coordinator hop (on a stream, whose
  // round trip is reported too). A task placed with its submit runs while that commits,
  // so a round trip could in principle go below this: call + max(fsync, hop + run).
  double ms() const { return disk.overwrite_ms.p50 + 2 * network.unary_ms.p50; }
  // The same with the fsync that follows an idle gap as long as those two round trips (the
  // time a sequential round trip's commit waits for, from one commit to the next): reported
  // beside the floor to show what the disk allows a request that comes after a pause.
  double after_idle_ms() const { return disk.after_idle_ms.p50 + 2 * network.unary_ms.p50; }
};

absl::StatusOr<Floor> MeasureFloor(const std::string& dir, int samples, int warmup);

}  // namespace rc::bench
