#pragma once
// Handlers that run only where the worker allows them (--allow TYPE,...): they execute
// code or reach other machines. A worker advertises only the types it enabled.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "worker/handler.h"
#include "worker/process/task_process.h"

namespace rc::worker {

std::unique_ptr<Handler> MakeCommandHandler(const ExecutionOptions& options);
// Opt-in although DESIGN.md does not list it as dangerous: it can reach whatever the
// worker's network can (routers, cloud metadata, internal services).
std::unique_ptr<Handler> MakeHttpRequestHandler(size_t body_cap);
std::unique_ptr<Handler> MakePythonEvalHandler(const ExecutionOptions& options);
// How python_script installs requirements (from WorkerConfig).
struct PythonScriptOptions {
  uint64_t cache_limit_bytes = 0;     // venv_cache_mb; 0 = no limit
  std::string requirements = "names";  // python_requirements: names | any
  std::string index_url;               // python_index_url ("" = pip's default index)
  // python_sdk_dir: where the SDK is (nullopt: beside the worker binary; "": none).
  std::optional<std::string> sdk_dir;
  static PythonScriptOptions FromConfig(const WorkerConfig& config);
};
// FAILED_PRECONDITION when python3 is missing; INVALID_ARGUMENT naming
// python_index_url when it is neither an http(s) URL nor an absolute directory, or naming
// python_sdk_dir when it is set and lacks the SDK (worker/handlers/python_sdk.h);
// FAILED_PRECONDITION when it is set to a path the containment tier hides from tasks.
// Logs one line saying whether tasks can import the SDK, and from where.
absl::StatusOr<std::unique_ptr<Handler>> MakePythonScriptHandler(const ExecutionOptions& options,
                                                                 const PythonScriptOptions& python);
std::unique_ptr<Handler> MakeNodeTaskHandler(const std::string& root, const ExecutionOptions& options);

// The opt-in types this build knows (plugins come on top, from --plugin-dir).
std::vector<std::string> OptInTypes();

// Registers every type in config.allow; their processes are contained by `containment`
// (nullptr: bare). INVALID_ARGUMENT naming an allowed type that is neither a known
// opt-in type nor a plugin found in config.plugin_dir.
absl::Status AddOptInHandlers(const WorkerConfig& config, std::shared_ptr<const Containment> containment,
                              HandlerRegistry* registry);

}  // namespace rc::worker
