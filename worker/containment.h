#pragma once
// Containment tiers (WorkerConfig.containment), chosen once per worker:
//   process  the process runner alone: rlimits, own session and process group.
//   bwrap    every task process starts inside bubblewrap: the root filesystem read-only,
//            the worker's data dir (other tasks, keys, caches) and secret files hidden,
//            a private /tmp, only the attempt's own directory writable, new user, PID,
//            IPC and UTS namespaces, and a network namespace with nothing but loopback
//            unless the task has internet_required.
// Either tier adds per-task cgroup limits (worker/cgroups.h) where the machine allows.
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
#include "worker/cgroups.h"
#include "worker/process_runner.h"

namespace rc::worker {

// What one task's sandbox lets through besides the read-only root.
struct SandboxPaths {
  std::string task_dir;                // read-write: the attempt's own directory
  std::vector<std::string> read_only;  // e.g. a virtualenv under the (hidden) data dir
};

// Everything the bwrap command line depends on (absolute paths throughout).
struct BwrapPlan {
  std::string bwrap;                    // the bwrap binary
  std::vector<std::string> hidden_dirs;   // covered with an empty tmpfs
  std::vector<std::string> hidden_files;  // covered with /dev/null
  SandboxPaths paths;
  std::string cwd;    // inside paths.task_dir
  bool network = false;
};

// The argv that runs `command` (argv[0] an absolute path) as `plan` says. Pure.
std::vector<std::string> BwrapArgv(const BwrapPlan& plan, const std::vector<std::string>& command);

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
  // (the program resolved first, so a missing one is still NOT_FOUND); with cgroups, a
  // new task cgroup that spec's child joins before exec. Keep the returned object until
  // the process has ended (it removes the cgroup; nullptr when there is none).
  // NOT_FOUND for a missing program; UNAVAILABLE when the cgroup cannot be made.
  absl::StatusOr<std::unique_ptr<TaskCgroup>> Apply(const SandboxPaths& paths, bool network, const std::string& name,
                                                    ProcessSpec* spec) const;

 private:
  Containment(std::string tier, CgroupSet cgroups) : tier_(std::move(tier)), cgroups_(std::move(cgroups)) {}

  std::string tier_;
  std::string bwrap_;
  std::vector<std::string> hidden_dirs_;
  std::vector<std::string> hidden_files_;
  CgroupSet cgroups_;
};

}  // namespace rc::worker
