// `python_script`: payload.code run by Python in a private directory; with
// payload.requirements, in a cached virtualenv holding them, built inside the task's
// containment tier (see VenvCache; which requirements are accepted:
// worker/handlers/python_requirements.h). Opt-in (--allow python_script).
//
// The SDK (worker/handlers/python_sdk.h) is on the script's PYTHONPATH, so that
// `import retire_cluster` works without naming it in requirements, in the system
// interpreter and in a virtualenv alike (the SDK's _deps.py then reaches the base
// interpreter's grpc and protobuf). Only python_script gets it: python_eval evaluates one
// expression (no imports to speak of), and command tasks choose their own interpreter
// and environment (a task's env may not set PYTHONPATH: task_env.h).
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/browser/task_browser.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/python_sdk.h"
#include "worker/payload.h"
#include "worker/process/task_process.h"
#include "worker/handlers/venv_cache.h"

namespace rc::worker {
namespace {

class PythonScriptHandler final : public Handler {
 public:
  PythonScriptHandler(ExecutionOptions options, std::string python, const PythonScriptOptions& config,
                      PackageSource source, std::string sdk_dir)
      : options_(std::move(options)),
        python_(python),
        sdk_dir_(std::move(sdk_dir)),
        venvs_((std::filesystem::path(options_.work_root).parent_path() / "venvs").string(), python,
               config.cache_limit_bytes, config.requirements, std::move(source), options_) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> code, p.String("code"));
    if (!code.has_value()) return absl::InvalidArgumentError("payload.code: required, Python source");
    ASSIGN_OR_RETURN(std::vector<std::string> requirements, p.StringArray("requirements"));
    ASSIGN_OR_RETURN(std::optional<bool> keep_alive, p.Bool("keep_alive"));
    ASSIGN_OR_RETURN(std::optional<double> timeout, p.Seconds("timeout"));
    ASSIGN_OR_RETURN(std::optional<TaskBrowserRequest> browser_request, ParseTaskBrowser(ctx.payload));

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
    // Set by the worker, never by the task (a task's PYTHON* is refused: task_env.h).
    if (!sdk_dir_.empty()) extra["PYTHONPATH"] = sdk_dir_;
    spec.env = TaskEnvironment(options_, dir.path(), extra);
    spec.cwd = dir.path();
    // The virtualenv lives under the worker's data dir, which a sandbox hides: it is
    // bound back read-only (VenvCache built it in a sandbox of its own). The SDK is
    // bound read-only too: the root is already, but the bind keeps it visible and
    // unwritable wherever it lives (MakePythonScriptHandler refused hidden places).
    SandboxPaths paths{dir.path(), {}};
    if (lease.has_value()) paths.read_only.push_back(lease->dir());
    if (!sdk_dir_.empty()) paths.read_only.push_back(sdk_dir_);
    ASSIGN_OR_RETURN(auto browser, TaskBrowser::Attach(browser_request, ctx, options_, &spec, &paths));
    ASSIGN_OR_RETURN(HandlerOutput out, RunTaskProcess(std::move(spec), paths, ctx, options_, timeout, "timeout"));
    browser->Finish(&out);
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
  const std::string sdk_dir_;  // "" = no SDK for tasks
  VenvCache venvs_;
};

}  // namespace

PythonScriptOptions PythonScriptOptions::FromConfig(const WorkerConfig& config) {
  PythonScriptOptions o;
  o.cache_limit_bytes = static_cast<uint64_t>(config.venv_cache_mb) << 20;
  o.requirements = config.python_requirements;
  o.index_url = config.python_index_url;
  o.sdk_dir = config.python_sdk_dir;
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
  ASSIGN_OR_RETURN(PythonSdk sdk, ChoosePythonSdk(python_options.sdk_dir, WorkerBinaryPath(), MissingSdkFilesOnDisk));
  if (!sdk.dir.empty() && options.containment != nullptr && options.containment->WouldExpose(sdk.dir)) {
    // Binding it would uncover what the sandbox hides (the data dir, the host's /tmp).
    const std::string why = absl::StrCat("python_sdk_dir: ", sdk.dir, " is (or holds) a path that containment ",
                                         options.containment->tier(), " hides from tasks");
    if (python_options.sdk_dir.has_value()) return absl::FailedPreconditionError(why);
    sdk = PythonSdk{"", absl::StrCat("not offered (", why, "; set python_sdk_dir elsewhere)")};
  }
  if (!sdk.dir.empty()) {
    spdlog::info("python_script: tasks can import retire_cluster (Python SDK in {}, {})", sdk.dir, sdk.how);
  } else {
    spdlog::info("python_script: no Python SDK for tasks: {}", sdk.how);
  }
  return std::unique_ptr<Handler>(
      new PythonScriptHandler(options, python, python_options, std::move(source), std::move(sdk.dir)));
}

}  // namespace rc::worker
