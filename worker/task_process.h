#pragma once
// What every process-starting handler shares: the worker's execution options, a
// private directory per attempt, a scrubbed environment, and turning a ProcessResult
// into handler output.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "worker/handler.h"
#include "worker/process_runner.h"

namespace rc::worker {

struct ExecutionOptions {
  std::string work_root;  // per-attempt directories are made here
  ResourceLimits limits;
  size_t output_cap = 1 << 20;
  std::vector<std::string> pass_env;

  static ExecutionOptions FromConfig(const WorkerConfig& config);
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

// PATH, HOME and TMPDIR (the task dir), LANG, the variables named in pass_env (from
// the worker's own environment), then `extra` (the task's own, which wins).
std::vector<std::string> TaskEnvironment(const ExecutionOptions& options, const std::string& dir,
                                         const std::map<std::string, std::string>& extra = {});

// stdout/stderr (truncation marked), exit code and usage; `failure` set for a non-zero
// exit or a death by signal, naming it.
HandlerOutput FromProcess(const ProcessResult& r, size_t cap);

// Runs a script-like task's process (spec.argv/env/cwd/stdin set by the caller) with the
// worker's limits, the attempt's stop token and pid reporting, and an optional payload
// timeout, named `timeout_field` in the DEADLINE_EXCEEDED failure when it fires first.
// The result is {"exit_code", "stdout", "stderr"}.
absl::StatusOr<HandlerOutput> RunTaskProcess(ProcessSpec spec, const TaskContext& ctx, const ExecutionOptions& options,
                                             std::optional<double> timeout, const char* timeout_field);

}  // namespace rc::worker
