#include "worker/handlers/opt_in_handlers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"
#include "worker/plugins.h"

namespace rc::worker {

std::vector<std::string> OptInTypes() {
  return {"command", "http_request", "js", "node_task", "python_eval", "python_script"};
}

absl::Status AddOptInHandlers(const WorkerConfig& config, std::shared_ptr<const Containment> containment,
                              HandlerRegistry* registry) {
  const ExecutionOptions options = ExecutionOptions::FromConfig(config, std::move(containment));
  PluginScan plugins;
  if (!config.plugin_dir.empty()) {
    absl::StatusOr<PluginScan> scan = ScanPlugins(config.plugin_dir, options);
    if (!scan.ok()) return scan.status();
    plugins = std::move(*scan);
    for (const std::string& why : plugins.refused) spdlog::warn("plugin refused: {}", why);
    for (const auto& [type, h] : plugins.handlers) {
      bool allowed = std::find(config.allow.begin(), config.allow.end(), type) != config.allow.end();
      spdlog::info("plugin {} found in {}{}", type, config.plugin_dir, allowed ? "" : " (not in --allow: disabled)");
    }
  }
  for (const std::string& type : config.allow) {
    if (registry->Find(type) != nullptr) continue;  // a safe built-in: always on
    if (type == "command") {
      registry->Add(type, MakeCommandHandler(options));
      continue;
    }
    if (type == "python_script") {
      auto h = MakePythonScriptHandler(options, PythonScriptOptions::FromConfig(config));
      if (!h.ok()) return h.status();
      registry->Add(type, std::move(*h));
      continue;
    }
    if (type == "python_eval") {
      registry->Add(type, MakePythonEvalHandler(options));
      continue;
    }
    if (type == "http_request") {
      registry->Add(type, MakeHttpRequestHandler(options.output_cap));
      continue;
    }
    if (type == "js") {
      auto h = MakeJsHandler(options, JsHandlerOptions::FromConfig(config));
      if (!h.ok()) return h.status();
      registry->Add(type, std::move(*h));
      continue;
    }
    if (type == "node_task") {
      registry->Add(type, MakeNodeTaskHandler(config.node_task_root, options));
      continue;
    }
    if (auto it = plugins.handlers.find(type); it != plugins.handlers.end()) {
      registry->Add(type, std::move(it->second));
      continue;
    }
    std::vector<std::string> known = OptInTypes();
    for (const auto& [t, h] : plugins.handlers) known.push_back(t);
    return absl::InvalidArgumentError(absl::StrCat(
        "allow: task type '", type, "' is not available on this worker (opt-in types: ", absl::StrJoin(known, ", "),
        config.plugin_dir.empty() ? "; no --plugin-dir" : absl::StrCat("; plugins from ", config.plugin_dir), ")"));
  }
  return absl::OkStatus();
}

}  // namespace rc::worker
