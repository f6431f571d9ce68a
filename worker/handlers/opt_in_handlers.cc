#include "worker/handlers/opt_in_handlers.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_handlers.h"
#include "worker/plugins.h"

namespace rc::worker {

std::vector<std::string> OptInTypes() {
  return {"browser", "browser_record", "browser_session", "command", "http_request", "js", "node_task",
          "python_eval", "python_script"};
}

namespace {

constexpr char kBrowserSearchPath[] = "/usr/local/bin:/usr/bin:/bin";

bool IsBrowserType(const std::string& type) {
  return type == "browser" || type == "browser_session" || type == "browser_record";
}

// The worker's persistent browsers, when `browser` is allowed and Chromium is found. A
// browser type allowed on a worker without Chromium is not registered (one warning), so
// its tasks wait unschedulable for a worker that has it instead of failing here.
// `*chromium` is the binary found ("" when none).
absl::StatusOr<std::shared_ptr<BrowserPool>> MakeBrowserPool(const WorkerConfig& config, std::string* chromium) {
  std::vector<std::string> wanted;
  for (const std::string& t : config.allow) {
    if (IsBrowserType(t)) wanted.push_back(t);
  }
  if (wanted.empty()) return std::shared_ptr<BrowserPool>();
  *chromium = FindChromium(config.chromium_path, kBrowserSearchPath);
  if (chromium->empty()) {
    spdlog::warn("{} allowed but not offered: {} (install Debian's chromium, or set chromium_path / --chromium)",
                 absl::StrJoin(wanted, ", "),
                 config.chromium_path.empty()
                     ? absl::StrCat("no chromium, chromium-browser or google-chrome on ", kBrowserSearchPath)
                     : absl::StrCat("chromium_path ", config.chromium_path, " is not an executable file"));
    return std::shared_ptr<BrowserPool>();
  }
  if (std::find(config.allow.begin(), config.allow.end(), "browser") == config.allow.end()) {
    return std::shared_ptr<BrowserPool>();
  }
  BrowserOptions options;
  options.chromium = *chromium;
  options.profiles_dir = absl::StrCat(config.data_dir, "/browser/profiles");
  options.display = config.display;
  options.no_sandbox = geteuid() == 0;
  auto pool = BrowserPool::Create(options);
  if (!pool.ok()) return pool.status();
  spdlog::info("browser: {} with profiles in {}{}{}", options.chromium, options.profiles_dir,
               options.display.empty() ? ", headless only (no --display)" : absl::StrCat(", display ", options.display),
               options.no_sandbox ? "; running as root, so Chromium runs with --no-sandbox" : "");
  return pool;
}

}  // namespace

absl::Status AddOptInHandlers(const WorkerConfig& config, std::shared_ptr<const Containment> containment,
                              HandlerRegistry* registry) {
  ExecutionOptions options = ExecutionOptions::FromConfig(config, std::move(containment));
  std::string chromium;
  absl::StatusOr<std::shared_ptr<BrowserPool>> pool = MakeBrowserPool(config, &chromium);
  if (!pool.ok()) return pool.status();
  // python_script, node_task and command tasks' `browser` blocks lease from it.
  options.browsers = *pool;
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
    if (IsBrowserType(type) && chromium.empty()) continue;  // warned in MakeBrowserPool
    if (type == "browser") {
      registry->Add(type, MakeBrowserHandler(options.browsers));
      continue;
    }
    if (type == "browser_session") {
      // Its profiles and Chromium options are the pool's, which exists only with `browser`.
      if (options.browsers == nullptr) {
        spdlog::warn("browser_session allowed but not offered: it needs `browser` in --allow too (the pool "
                     "whose Chromium, display and profiles it uses)");
      } else {
        registry->Add(type, MakeBrowserSessionHandler(options.browsers, options));
      }
      continue;
    }
    if (type == "browser_record") {
      auto h = MakeBrowserRecordHandler(options, BrowserRecordOptions{chromium, config.display});
      if (!h.ok()) {
        spdlog::warn("browser_record allowed but not offered: {}", std::string(h.status().message()));
        continue;
      }
      registry->Add(type, std::move(*h));
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
