#pragma once
// A process the bench starts (retire-cluster-bench --spawn-workers): stdout and stderr to
// files, stopped with SIGTERM then SIGKILL by its destructor, by a SIGINT or SIGTERM to the
// bench (StopChildrenOnSignal), and sent SIGTERM by the kernel if the bench dies otherwise.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rc::bench {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with argv; FAILED_PRECONDITION when it cannot be executed.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(std::vector<std::string> argv,
                                                             const std::string& stdout_path,
                                                             const std::string& stderr_path);
  ~ChildProcess();

  // SIGTERM, then SIGKILL after `grace`; idempotent.
  void Stop(absl::Duration grace = absl::Seconds(10));
  // True once it has exited (reaped here).
  bool Exited();

  pid_t pid() const { return pid_; }
  // The last `bytes` of its stderr file, for error messages.
  std::string StderrTail(size_t bytes = 2000) const;
  std::string Stdout() const;

 private:
  ChildProcess(pid_t pid, std::string out, std::string err)
      : pid_(pid), stdout_path_(std::move(out)), stderr_path_(std::move(err)) {}
  // Stop() with the registry's lock (in child_process.cc) already held.
  void StopLocked(absl::Duration grace);
  friend void StopChildrenOnSignal();

  pid_t pid_;
  std::string stdout_path_, stderr_path_;
};

// Call first in main, before any thread starts: SIGINT and SIGTERM then stop every live
// ChildProcess, remove every directory passed to RemoveOnSignal, and end this process with
// 128 + the signal number.
void StopChildrenOnSignal();
// `dir` is removed (with everything in it) by the signal path above, until ForgetOnSignal.
void RemoveOnSignal(const std::string& dir);
void ForgetOnSignal(const std::string& dir);

}  // namespace rc::bench
