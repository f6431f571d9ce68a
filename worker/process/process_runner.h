#pragma once
// The one way a handler starts a process (STYLE.md rule 11). The child gets its own
// session and process group, a death signal if the worker dies, rlimits, the working
// directory and environment it is given (nothing inherited), and stdin from memory.
// stdout/stderr are captured up to a cap (the rest is read and dropped, so memory stays
// bounded). When the stop token stops (cancel or deadline), or the main process exits,
// the whole process group is killed: nothing it started outlives the attempt.

#include <cstdint>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/execution/stop_token.h"

namespace rc::worker {

struct ResourceLimits {
  uint64_t address_space_bytes = 4ULL << 30;  // RLIMIT_AS; 0 = unlimited
  uint64_t cpu_seconds = 0;                   // RLIMIT_CPU; 0 = unlimited
  uint64_t file_size_bytes = 1ULL << 30;      // RLIMIT_FSIZE; 0 = unlimited
  uint64_t open_files = 1024;                 // RLIMIT_NOFILE; 0 = unlimited
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] without '/' is looked up on env's PATH
  std::vector<std::string> env;   // the complete environment, "KEY=VALUE"
  std::string cwd;
  std::string stdin_data;
  ResourceLimits limits;
  size_t output_cap = 1 << 20;  // bytes kept per stream
  absl::Time deadline = absl::InfiniteFuture();  // besides the stop token's own; on its clock
  // Open cgroup.procs files (worker/process/cgroups.h): the child writes itself into each before
  // exec, so that everything it starts is counted against the cgroup's limits.
  std::vector<int> cgroup_procs_fds;
  // Descriptors the child keeps across exec (every other one above 2 is closed), e.g.
  // the memfd bwrap reads its --args from.
  std::vector<int> inherit_fds;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when ended by a signal
  int signal = 0;
  bool stopped = false;  // killed because of the stop token or `deadline`
  bool deadline_passed = false;
  std::string stdout;
  std::string stderr;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  double cpu_seconds = 0;  // user + system, of the process and the children it waited for
  int64_t peak_rss_bytes = 0;
  int pid = 0;
};

// NOT_FOUND when argv[0] is not on PATH; FAILED_PRECONDITION when it cannot be executed,
// cwd is unusable or a cgroup cannot be joined (message names it); INTERNAL for pipe/fork
// failures.
absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec, const StopToken& stop,
                                         const std::function<void(int pid)>& on_start = nullptr);

// The child's half of starting `spec`, called right after fork (only async-signal-safe
// calls): its own session, killed with `parent` (exits at once if that is already gone),
// signals unblocked and SIGPIPE default, stdin/stdout/stderr from the given descriptors, then
// spec.cwd, its cgroups, its limits (0 = none) and no core dumps; every other descriptor but
// spec.inherit_fds is closed on exec. A failure goes to `error_fd` as {stage, errno} (1 chdir,
// 2 joining a cgroup, 3 exec) and the child exits 127. `argv`/`envp` are prepared before fork.
[[noreturn]] void ExecChild(const ProcessSpec& spec, pid_t parent, const char* program, char* const argv[],
                            char* const envp[], int stdin_fd, int stdout_fd, int stderr_fd, int error_fd);

// spec.argv[0] looked up on spec.env's PATH (default /usr/local/bin:/usr/bin:/bin).
// INVALID_ARGUMENT for an empty argv, NOT_FOUND naming the program and PATH.
absl::StatusOr<std::string> ResolveProgram(const ProcessSpec& spec);

// PATH lookup as execvp does it, in `path_var` (colon-separated). "" when not found.
std::string FindProgram(const std::string& name, const std::string& path_var);

// Appends "\n[... N bytes truncated]" when `truncated`.
std::string MarkTruncated(std::string text, bool truncated, size_t cap);

}  // namespace rc::worker
