#pragma once
// A long-lived child process the worker talks to over its standard streams: the engine
// host of `js` tasks (js_engine.h). The process runner (process_runner.h) runs a task's
// process to its end with stdin from memory; this one stays up across tasks, so its
// streams stay open to the worker: stdin is a Unix socket (so a write to a process that
// died fails with EPIPE instead of raising SIGPIPE in the worker), stdout and stderr are
// pipes the owner polls.
//
// The child is set up as the runner sets up task processes: its own session and process
// group, a death signal when the forking thread ends (so fork from a thread that lives as
// long as the process should), the cgroups and rlimits of the spec, no other descriptor.

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/process/process_runner.h"

namespace rc::worker {

class HostProcess {
 public:
  // Starts spec.argv (spec.stdin_data, output_cap and deadline are not used).
  // NOT_FOUND when argv[0] is not on PATH; FAILED_PRECONDITION when it cannot be run
  // (cwd, cgroup or exec, naming it); INTERNAL for socket, pipe or fork failures.
  static absl::StatusOr<std::unique_ptr<HostProcess>> Start(const ProcessSpec& spec);
  // Kills the process group (SIGKILL) and reaps the process if it has not been.
  ~HostProcess();
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;

  int pid() const { return pid_; }
  // Non-blocking read ends of stdout and stderr, for poll(); owned by this object.
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }
  // Readable once the process has exited (a pidfd); -1 on kernels without pidfd_open.
  int exit_fd() const { return pidfd_; }

  // Writes all of `data` to stdin, waiting up to `limit` (real time) while the process
  // does not read. Thread-safe. UNAVAILABLE once stdin is closed, the process stopped
  // reading (EPIPE) or `limit` passed.
  absl::Status Write(absl::string_view data, absl::Duration limit) ABSL_LOCKS_EXCLUDED(write_mu_);
  // End of input: the process sees EOF on stdin. Thread-safe; later writes fail.
  void CloseStdin() ABSL_LOCKS_EXCLUDED(write_mu_);
  // SIGKILL to the process group.
  void Kill();
  // How it ended ("exit code 0", "killed by signal 9 (Killed)") once it has; nullopt while it
  // runs. Reaps it. Called by one thread (the owner's reader).
  std::optional<std::string> Exited();

 private:
  HostProcess() = default;

  int pid_ = -1;
  int pidfd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::optional<std::string> exited_;
  absl::Mutex write_mu_;
  int stdin_fd_ ABSL_GUARDED_BY(write_mu_) = -1;
};

}  // namespace rc::worker
