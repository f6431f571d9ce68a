#pragma once
// Containment tiers (WorkerConfig.containment), chosen once per worker:
//   process  the process runner alone: rlimits, own session and process group.
//   bwrap    every task process starts inside bubblewrap: the root filesystem read-only,
//            the worker's data dir (other tasks, keys, caches) and secret files hidden,
//            a private /tmp, only the attempt's own directory writable, new user, PID,
//            IPC and UTS namespaces, and a network namespace with nothing but loopback
//            unless the task has internet_required. bwrap itself runs with the fixed
//            HostEnvironment() (worker/handlers/task_env.h); the task's environment is handed to
//            bwrap on a memfd (--args FD: --clearenv, --setenv ...) and applies only
//            inside, so nothing a task sets reaches a process outside its sandbox, and
//            its values are not on bwrap's command line for other users to read.
// Either tier adds per-task cgroup limits (worker/process/cgroups.h) where the machine allows.
//
// Design assumption: an unavailable tier is an error at startup, never a silent
// fallback to a weaker one; missing cgroup controllers only weaken limits, so they are
// logged and reported (Capabilities.cgroup_limits) but do not stop the worker.
//
// Why no `--new-session` for bwrap: the runner already gives every task its own session
// without a controlling terminal (so TIOCSTI has nothing to reach), and keeping bwrap and
// the sandboxed processes in the runner's process group lets a stop send SIGTERM to all
// of them and SIGKILL after the grace, exactly as for uncontained tasks. Whatever leaves
// the group still dies with the PID namespace when the sandbox's init ends.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "worker/process/cgroups.h"
#include "worker/process/process_runner.h"

namespace rc::worker {

// What one task's sandbox lets through besides the read-only root.
struct SandboxPaths {
  std::string task_dir;                // read-write: the attempt's own directory
  std::vector<std::string> read_only;  // e.g. a virtualenv under the (hidden) data dir
  std::vector<std::string> read_write = {};  // besides task_dir: a virtualenv being built
};

// Everything the bwrap command line depends on (absolute paths throughout).
struct BwrapPlan {
  std::string bwrap;                    // the bwrap binary
  std::vector<std::string> hidden_dirs;   // covered with an empty tmpfs
  std::vector<std::string> hidden_files;  // covered with /dev/null
  SandboxPaths paths;
  std::string cwd;    // inside paths.task_dir
  bool network = false;
  // The descriptor bwrap reads the sandbox's environment from (BwrapEnvArgs); -1: the
  // sandbox starts with an empty environment.
  int env_args_fd = -1;
};

// The argv that runs `command` (argv[0] an absolute path) as `plan` says. Pure.
std::vector<std::string> BwrapArgv(const BwrapPlan& plan, const std::vector<std::string>& command);

// What bwrap reads from plan.env_args_fd: NUL-separated "--clearenv", then "--setenv",
// NAME, VALUE for each "NAME=VALUE" of `env`. INVALID_ARGUMENT for an entry without '='
// or holding a NUL byte (it would split into further bwrap options). Pure.
absl::StatusOr<std::string> BwrapEnvArgs(const std::vector<std::string>& env);

// What Containment::Apply set up for one process; keep it until the process has ended
// (the cgroup's destructor kills leftovers and removes it; the memfd is closed).
class AppliedContainment {
 public:
  AppliedContainment() = default;
  AppliedContainment(AppliedContainment&& o) noexcept : cgroup(std::move(o.cgroup)), env_fd(o.env_fd) { o.env_fd = -1; }
  AppliedContainment& operator=(AppliedContainment&& o) noexcept;
  AppliedContainment(const AppliedContainment&) = delete;
  ~AppliedContainment();

  std::unique_ptr<TaskCgroup> cgroup;  // nullptr when there is none
  int env_fd = -1;                     // the memfd with the sandbox's environment
};

class Containment {
 public:
  // Checks that config.containment works on this machine (bwrap: found on `search_path`,
  // and a trial sandbox with every namespace it uses runs /bin/true), and finds the cgroup
  // controllers it can enforce (logging one line about them). FAILED_PRECONDITION naming
  // the tier and the reason when the tier is unavailable.
  static absl::StatusOr<std::shared_ptr<const Containment>> Create(const WorkerConfig& config,
                                                                   const std::string& search_path);
  // As above, on the worker's own $PATH.
  static absl::StatusOr<std::shared_ptr<const Containment>> Create(const WorkerConfig& config);

  const std::string& tier() const { return tier_; }
  std::vector<std::string> cgroup_limits() const { return cgroups_.enforced(); }

  // Rewrites `spec` to run contained: under bwrap, argv becomes the bwrap command line
  // (the program resolved first, on spec's PATH, so a missing one is still NOT_FOUND),
  // spec's environment moves inside the sandbox and bwrap gets HostEnvironment(); with
  // cgroups, a new task cgroup that spec's child joins before exec. Keep the returned
  // object until the process has ended. NOT_FOUND for a missing program; INVALID_ARGUMENT
  // for an environment entry bwrap cannot carry; UNAVAILABLE when the cgroup or the
  // environment's memfd cannot be made.
  absl::StatusOr<AppliedContainment> Apply(const SandboxPaths& paths, bool network, const std::string& name,
                                           ProcessSpec* spec) const;

  // True when binding `path` into a sandbox would uncover what the sandbox hides (under
  // bwrap: the worker's data dir, secret files, and the host's /tmp and /dev/shm, which
  // tasks see as private, empty ones): `path` (symlinks resolved) is one of them, inside
  // one, or contains one. Always false under process, which hides nothing.
  bool WouldExpose(const std::string& path) const;

 private:
  Containment(std::string tier, CgroupSet cgroups) : tier_(std::move(tier)), cgroups_(std::move(cgroups)) {}

  std::string tier_;
  std::string bwrap_;
  std::vector<std::string> hidden_dirs_;
  std::vector<std::string> hidden_files_;
  CgroupSet cgroups_;
};

}  // namespace rc::worker
