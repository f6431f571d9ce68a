#pragma once
// Handlers that run only where the worker allows them (--allow TYPE,...): they execute
// code or reach other machines. A worker advertises only the types it enabled.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/config.h"
#include "worker/handler.h"
#include "worker/handlers/js_engine_dir.h"
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
// How `js` finds node and its engine host (from WorkerConfig).
struct JsHandlerOptions {
  // js_engine_dir: where host.js is (nullopt: beside the worker binary; "": none).
  std::optional<std::string> engine_dir;
  int threads = 2;  // engine threads: the worker's slots, 2..64
  std::string search_path = "/usr/local/bin:/usr/bin:/bin";  // where node is looked for
  NodeVersionProbe node_version = NodeVersionOnDisk;
  const Clock* clock = RealClock::Get();
  static JsHandlerOptions FromConfig(const WorkerConfig& config);
};
// Starts the engine host in the background (worker/handlers/js_engine.h) and returns the
// handler. FAILED_PRECONDITION, saying how to get it, without node >= 18 or an engine
// host (not found beside the binary, or js_engine_dir ""), or when js_engine_dir is a path
// the containment tier hides; INVALID_ARGUMENT naming js_engine_dir when it is set and
// lacks the host.
absl::StatusOr<std::unique_ptr<Handler>> MakeJsHandler(const ExecutionOptions& options, const JsHandlerOptions& js);

// The opt-in types this build knows (plugins come on top, from --plugin-dir).
std::vector<std::string> OptInTypes();

// Registers every type in config.allow; their processes are contained by `containment`
// (nullptr: bare). INVALID_ARGUMENT naming an allowed type that is neither a known
// opt-in type nor a plugin found in config.plugin_dir. The browser types (browser,
// browser_session, browser_record) are skipped with one warning on a worker without
// Chromium (FindChromium), so that their tasks wait for a worker that has it; with
// `browser` allowed and Chromium found, one BrowserPool (profiles in
// <data_dir>/browser/profiles) serves them and every task's `browser` block
// (ExecutionOptions::browsers). FAILED_PRECONDITION when its profiles dir cannot be made.
absl::Status AddOptInHandlers(const WorkerConfig& config, std::shared_ptr<const Containment> containment,
                              HandlerRegistry* registry);

}  // namespace rc::worker
