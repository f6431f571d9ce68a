#pragma once
// The scale simulator's view of the coordinator process: start a private one from the
// build tree (stopped again whatever happens), and sample a process's CPU time and
// memory from /proc.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rc::bench {

// A retire-cluster-main started on 127.0.0.1 with free ports and its data in a fresh
// temporary directory. The destructor stops it (SIGTERM, then SIGKILL after 10 s) and
// removes the directory; so does a SIGINT or SIGTERM to this process (see
// StopCoordinatorOnSignal); and the child gets SIGTERM if this process dies any other way.
class CoordinatorProcess {
 public:
  // Starts `main_path` (with `extra_args` after ours) and waits up to `timeout` for its
  // "listening on HOST:PORT" line. FAILED_PRECONDITION when it exits or stays silent,
  // with the end of its log.
  static absl::StatusOr<std::unique_ptr<CoordinatorProcess>> Start(const std::string& main_path,
                                                                   absl::Duration timeout,
                                                                   const std::vector<std::string>& extra_args = {});
  ~CoordinatorProcess();

  // Stops the process and removes its directory; idempotent.
  void Stop();

  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }  // HOST:PORT (gRPC)

 private:
  CoordinatorProcess(pid_t pid, std::string dir) : pid_(pid), dir_(std::move(dir)) {}
  std::string LogTail() const;

  pid_t pid_;
  std::string dir_;
  std::string address_;
};

struct ProcessSample {
  absl::Time at;
  double cpu_seconds = 0;  // user + system, all threads
  double rss_mb = 0;       // VmRSS
  double peak_rss_mb = 0;  // VmHWM
};

// SIGTERM to `pid`, then SIGKILL once `grace` has passed; reaps it either way.
void StopPid(pid_t pid, absl::Duration grace);

// NOT_FOUND when the process is gone or /proc cannot be read.
absl::StatusOr<ProcessSample> SampleProcess(pid_t pid);

// Cores used between two samples: CPU seconds per wall second.
double CoresBetween(const ProcessSample& a, const ProcessSample& b);

// Call first in main, before any thread starts: SIGINT and SIGTERM then stop the
// coordinator started by CoordinatorProcess::Start (if any) and end this process with
// 128 + the signal number.
void StopCoordinatorOnSignal();

// Raises the soft open-file limit to the hard one (thousands of streams need sockets on
// the coordinator's side, which inherits the limit when we start it).
void RaiseOpenFileLimit();

}  // namespace rc::bench
