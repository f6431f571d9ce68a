#include "worker/plugins.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/plugin_abi.h"

namespace rc::worker {
namespace {

bool ValidTypeName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// ---- executable plugins ----

class ExecutablePlugin final : public Handler {
 public:
  ExecutablePlugin(std::string path, ExecutionOptions options) : path_(std::move(path)), options_(std::move(options)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(TaskDir dir, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    ProcessSpec spec;
    spec.argv = {path_};
    spec.env = TaskEnvironment(options_, dir.path());
    spec.cwd = dir.path();
    spec.stdin_data = ctx.payload;
    spec.limits = options_.limits;
    spec.output_cap = options_.output_cap;
    ASSIGN_OR_RETURN(ProcessResult r, RunContained(std::move(spec), {dir.path(), {path_}}, ctx, options_));
    HandlerOutput out = FromProcess(r, options_.output_cap);
    out.stdout.clear();  // stdout is the result, not a log
    if (!out.failure.ok()) {
      std::string tail = r.stderr.size() > 500 ? r.stderr.substr(r.stderr.size() - 500) : r.stderr;
      out.failure = absl::AbortedError(absl::StrCat("plugin ", path_, ": ", out.failure.message(),
                                                    tail.empty() ? "" : ": ", absl::StripAsciiWhitespace(tail)));
      return out;
    }
    nlohmann::json result = nlohmann::json::parse(r.stdout, nullptr, false);
    if (r.stdout_truncated || result.is_discarded()) {
      out.failure = absl::DataLossError(absl::StrCat("plugin ", path_, " printed no valid JSON on stdout",
                                                     r.stdout_truncated ? " (output over the cap)" : ""));
      return out;
    }
    out.result = result.dump();
    return out;
  }

 private:
  const std::string path_;
  const ExecutionOptions options_;
};

// ---- shared-library plugins ----

struct CallState {
  const StopToken* stop;
  std::string result;
  std::string error;
  bool has_result = false;
};

int ShouldStop(const rc_call* call) { return static_cast<CallState*>(call->host)->stop->stopped() ? 1 : 0; }
void SetResult(const rc_call* call, const char* json, size_t len) {
  if (json == nullptr) return;
  auto* s = static_cast<CallState*>(call->host);
  s->result.assign(json, len);
  s->has_result = true;
}
void SetError(const rc_call* call, const char* message) {
  static_cast<CallState*>(call->host)->error = message != nullptr ? message : "";
}

class LibraryPlugin final : public Handler {
 public:
  LibraryPlugin(std::shared_ptr<void> library, std::string file, rc_run_fn run)
      : library_(std::move(library)), file_(std::move(file)), run_(run) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    CallState state{ctx.stop, "", "", false};
    rc_call call{ctx.payload.data(), ctx.payload.size(), &state, ShouldStop, SetResult, SetError};
    const int rc = run_(&call);
    HandlerOutput out;
    if (rc != 0) {
      return absl::AbortedError(absl::StrCat(state.error.empty() ? "plugin failed" : state.error, " (", file_,
                                             " returned ", rc, ")"));
    }
    if (state.has_result) {
      nlohmann::json j = nlohmann::json::parse(state.result, nullptr, false);
      if (j.is_discarded()) return absl::DataLossError(absl::StrCat("plugin ", file_, " set a result that is not JSON"));
      out.result = j.dump();
    }
    return out;
  }

 private:
  std::shared_ptr<void> library_;  // keeps it loaded while a handler exists
  const std::string file_;
  const rc_run_fn run_;
};

struct Registration {
  std::shared_ptr<void> library;
  std::string file;
  std::map<std::string, std::unique_ptr<Handler>>* handlers;
  std::vector<std::string>* refused;
  std::vector<std::string> added;  // to roll back if registration fails
};

void AddType(rc_registrar* r, const char* type, rc_run_fn run) {
  auto* reg = static_cast<Registration*>(r->host);
  if (type == nullptr || run == nullptr || !ValidTypeName(type)) {
    reg->refused->push_back(absl::StrCat(reg->file, ": registered an invalid task type name"));
    return;
  }
  (*reg->handlers)[type] = std::make_unique<LibraryPlugin>(reg->library, reg->file, run);
  reg->added.push_back(type);
}

void LoadLibrary(const std::string& path, PluginScan* scan) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    scan->refused.push_back(absl::StrCat(path, ": cannot load: ", dlerror()));
    return;
  }
  std::shared_ptr<void> library(handle, [](void* h) { dlclose(h); });
  auto version = reinterpret_cast<int (*)()>(dlsym(handle, "rc_plugin_abi_version"));
  auto reg_fn = reinterpret_cast<int (*)(rc_registrar*)>(dlsym(handle, "rc_plugin_register"));
  if (version == nullptr || reg_fn == nullptr) {
    scan->refused.push_back(absl::StrCat(path, ": not a retire-cluster plugin (no rc_plugin_abi_version/rc_plugin_register)"));
    return;
  }
  if (int v = version(); v != RC_PLUGIN_ABI_VERSION) {
    scan->refused.push_back(absl::StrCat(path, ": plugin ABI version ", v, ", this worker speaks ",
                                         RC_PLUGIN_ABI_VERSION, "; not loaded (rebuild the plugin)"));
    return;
  }
  Registration reg{library, path, &scan->handlers, &scan->refused, {}};
  rc_registrar registrar{&reg, AddType};
  if (int rc = reg_fn(&registrar); rc != 0) {
    for (const std::string& type : reg.added) scan->handlers.erase(type);
    scan->refused.push_back(absl::StrCat(path, ": rc_plugin_register returned ", rc, "; not loaded"));
  }
}

}  // namespace

absl::StatusOr<PluginScan> ScanPlugins(const std::string& dir, const ExecutionOptions& options) {
  PluginScan scan;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("plugin dir ", dir, ": ", ec.message()));
  std::vector<std::filesystem::path> files;
  for (const auto& entry : it) {
    if (entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    if (absl::EndsWith(name, ".so") || name.find(".so.") != std::string::npos) {
      LoadLibrary(path.string(), &scan);
    } else if (access(path.c_str(), X_OK) == 0) {
      if (!ValidTypeName(name)) {
        scan.refused.push_back(absl::StrCat(path.string(), ": name is not a valid task type"));
        continue;
      }
      scan.handlers[name] = std::make_unique<ExecutablePlugin>(path.string(), options);
    }
  }
  return scan;
}

}  // namespace rc::worker
