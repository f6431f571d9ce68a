#pragma once
// What every process-starting handler shares: the worker's execution options, a
// private directory per attempt, a scrubbed environment, and turning a ProcessResult
// into handler output.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "worker/process/containment.h"
#include "worker/handler.h"
#include "worker/process/process_runner.h"

namespace rc::worker {

class BrowserPool;

struct ExecutionOptions {
  std::string work_root;  // per-attempt directories are made here
  ResourceLimits limits;
  size_t output_cap = 1 << 20;
  std::vector<std::string> pass_env;
  // How task processes are contained (tier and cgroups); nullptr runs them bare, with
  // the runner's rlimits and process group only (as unit tests of handlers do).
  std::shared_ptr<const Containment> containment;
  // The worker's persistent browsers (worker/browser/browser_pool.h); nullptr when this
  // worker runs none (`browser` not allowed, or no Chromium): a task's `browser` block is
  // then refused.
  std::shared_ptr<BrowserPool> browsers;
  // The CDP relay binary for tasks with a browser in a sandbox without network
  // (worker/browser/task_browser.h); "" = retire-cluster-cdp-relay beside the worker's
  // own executable (tests set it: theirs is elsewhere).
  std::string cdp_relay;

  static ExecutionOptions FromConfig(const WorkerConfig& config,
                                     std::shared_ptr<const Containment> containment = nullptr);
};

// A private working directory for one attempt, removed with its contents when this
// object goes away.
class TaskDir {
 public:
  // UNAVAILABLE naming the path when it cannot be made.
  static absl::StatusOr<TaskDir> Create(const std::string& root, const std::string& task_id, int attempt);
  TaskDir(TaskDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TaskDir(const TaskDir&) = delete;
  ~TaskDir();
  const std::string& path() const { return path_; }

 private:
  explicit TaskDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The environment inside a task's sandbox (at the `process` tier: of the task process
// alone): PATH, HOME and TMPDIR (the task dir), LANG, the variables named in pass_env
// (from the worker's own environment), then `extra`, which wins: the handler's own and
// the task's, the latter checked by CheckTaskEnv (worker/handlers/task_env.h) first.
std::vector<std::string> TaskEnvironment(const ExecutionOptions& options, const std::string& dir,
                                         const std::map<std::string, std::string>& extra = {});

// stdout/stderr (truncation marked), exit code and usage; `failure` set for a non-zero
// exit or a death by signal, naming it.
HandlerOutput FromProcess(const ProcessResult& r, size_t cap);

// Every task process goes through here: `spec` contained as options.containment says
// (`paths` name the attempt's directory and what else it may read; the network is open
// only when ctx.internet_required), run with the attempt's stop token and pid reporting,
// its cgroup removed afterwards. Errors as RunProcess, and UNAVAILABLE when the task's
// cgroup cannot be made.
absl::StatusOr<ProcessResult> RunContained(ProcessSpec spec, const SandboxPaths& paths, const TaskContext& ctx,
                                           const ExecutionOptions& options);

// RunContained's mechanism with the network, the cgroup's name, the stop token and the
// pid callback given, for processes that run for a task but are not the task's own
// (dependency installs).
absl::StatusOr<ProcessResult> RunInSandbox(ProcessSpec spec, const SandboxPaths& paths, bool network,
                                           const std::string& name, const StopToken& stop,
                                           const std::function<void(int pid)>& on_start,
                                           const ExecutionOptions& options);

// Runs a script-like task's process (spec.argv/env/cwd/stdin set by the caller) through
// RunContained with the worker's limits and an optional payload timeout, named
// `timeout_field` in the DEADLINE_EXCEEDED failure when it fires first.
// The result is {"exit_code", "stdout", "stderr"}.
absl::StatusOr<HandlerOutput> RunTaskProcess(ProcessSpec spec, const SandboxPaths& paths, const TaskContext& ctx,
                                             const ExecutionOptions& options, std::optional<double> timeout,
                                             const char* timeout_field);

}  // namespace rc::worker
