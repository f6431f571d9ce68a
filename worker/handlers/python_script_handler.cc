// `python_script`: payload.code run by Python in a private directory; with
// payload.requirements, in a cached virtualenv holding them, built inside the task's
// containment tier (see VenvCache; which requirements are accepted:
// worker/handlers/python_requirements.h). Opt-in (--allow python_script).
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/payload.h"
#include "worker/process/task_process.h"
#include "worker/handlers/venv_cache.h"

namespace rc::worker {
namespace {

class PythonScriptHandler final : public Handler {
 public:
  PythonScriptHandler(ExecutionOptions options, std::string python, const PythonScriptOptions& config,
                      PackageSource source)
      : options_(std::move(options)),
        python_(python),
        venvs_((std::filesystem::path(options_.work_root).parent_path() / "venvs").string(), python,
               config.cache_limit_bytes, config.requirements, std::move(source), options_) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> code, p.String("code"));
    if (!code.has_value()) return absl::InvalidArgumentError("payload.code: required, Python source");
    ASSIGN_OR_RETURN(std::vector<std::string> requirements, p.StringArray("requirements"));
    ASSIGN_OR_RETURN(std::optional<bool> keep_alive, p.Bool("keep_alive"));
    ASSIGN_OR_RETURN(std::optional<double> timeout, p.Seconds("timeout"));

    std::optional<VenvCache::Lease> lease;
    bool created = false;
    std::string python = python_;
    if (!requirements.empty() || keep_alive.value_or(false)) {
      ASSIGN_OR_RETURN(VenvCache::Lease l, venvs_.Acquire(requirements, keep_alive.value_or(false), ctx, &created));
      python = l.python();
      lease.emplace(std::move(l));
    }
    ASSIGN_OR_RETURN(TaskDir dir, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    const std::string script = (std::filesystem::path(dir.path()) / "main.py").string();
    std::ofstream(script) << *code;
    ProcessSpec spec;
    spec.argv = {python, script};
    std::map<std::string, std::string> extra = {{"PYTHONUNBUFFERED", "1"}};
    if (lease.has_value()) extra["VIRTUAL_ENV"] = lease->dir();
    spec.env = TaskEnvironment(options_, dir.path(), extra);
    spec.cwd = dir.path();
    // The virtualenv lives under the worker's data dir, which a sandbox hides: it is
    // bound back read-only (VenvCache built it in a sandbox of its own).
    SandboxPaths paths{dir.path(), {}};
    if (lease.has_value()) paths.read_only.push_back(lease->dir());
    ASSIGN_OR_RETURN(HandlerOutput out, RunTaskProcess(std::move(spec), paths, ctx, options_, timeout, "timeout"));
    if (lease.has_value()) {
      nlohmann::json result = nlohmann::json::parse(out.result);
      result["environment"] = std::filesystem::path(lease->dir()).filename().string();
      result["environment_created"] = created;
      out.result = result.dump();
    }
    return out;
  }

 private:
  const ExecutionOptions options_;
  const std::string python_;
  VenvCache venvs_;
};

}  // namespace

PythonScriptOptions PythonScriptOptions::FromConfig(const WorkerConfig& config) {
  PythonScriptOptions o;
  o.cache_limit_bytes = static_cast<uint64_t>(config.venv_cache_mb) << 20;
  o.requirements = config.python_requirements;
  o.index_url = config.python_index_url;
  return o;
}

absl::StatusOr<std::unique_ptr<Handler>> MakePythonScriptHandler(const ExecutionOptions& options,
                                                                 const PythonScriptOptions& python_options) {
  std::string python = FindProgram("python3", "/usr/bin:/usr/local/bin:/bin");
  if (python.empty()) return absl::FailedPreconditionError("python_script: python3 is not installed on this worker");
  if (python_options.requirements != "names" && python_options.requirements != "any") {
    return absl::InvalidArgumentError(absl::StrCat("python_requirements: unknown value '", python_options.requirements,
                                                   "' (names or any)"));
  }
  ASSIGN_OR_RETURN(PackageSource source, ParsePackageSource(python_options.index_url));
  return std::unique_ptr<Handler>(new PythonScriptHandler(options, python, python_options, std::move(source)));
}

}  // namespace rc::worker
