#include "worker/browser/task_browser.h"

#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "worker/handlers/python_sdk.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kRelayBinary[] = "retire-cluster-cdp-relay";

absl::Status Bad(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("payload.browser", key.empty() ? "" : ".", key, ": ", why));
}

// `env` (NAME=VALUE entries) with NAME set to `value`, replacing an earlier one (say from
// pass_env).
void SetVariable(std::vector<std::string>* env, const std::string& name, const std::string& value) {
  const std::string prefix = name + "=";
  for (std::string& kv : *env) {
    if (kv.rfind(prefix, 0) == 0) {
      kv = prefix + value;
      return;
    }
  }
  env->push_back(prefix + value);
}

}  // namespace

absl::StatusOr<std::optional<TaskBrowserRequest>> ParseTaskBrowser(const std::string& payload) {
  const json j = json::parse(payload.empty() ? "{}" : payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("payload: expected a JSON object");
  auto it = j.find("browser");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return Bad("", "expected an object such as {\"profile\": \"default\", \"keep_alive\": true}");
  TaskBrowserRequest r;
  for (const auto& [key, value] : it->items()) {
    if (key == "port" || key == "cdp_port") {
      return Bad(key, absl::StrCat("the CDP port is chosen by Chromium (--remote-debugging-port=0) and given to the "
                                   "task as RC_CDP_URL; remove payload.browser.", key));
    }
    if (key == "profile") {
      if (!value.is_string()) return Bad(key, "expected a string");
      r.profile = value.get<std::string>();
      RETURN_IF_ERROR(CheckProfileName(r.profile, "payload.browser.profile"));
    } else if (key == "keep_alive" || key == "headless") {
      if (!value.is_boolean()) return Bad(key, "expected true or false");
      (key == "keep_alive" ? r.keep_alive : r.headless) = value.get<bool>();
    } else {
      return Bad(key, "unknown key (known: profile, keep_alive, headless)");
    }
  }
  return r;
}

bool NeedsCdpRelay(absl::string_view containment_tier, bool internet_required) {
  return containment_tier == "bwrap" && !internet_required;
}

std::vector<std::string> RelayedArgv(const std::string& relay, int port, const std::string& socket_path,
                                     const std::vector<std::string>& command) {
  std::vector<std::string> argv = {relay,       "--listen", absl::StrCat("tcp:127.0.0.1:", port),
                                   "--connect", absl::StrCat("unix:", socket_path), "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

std::string CdpSocketPath(const std::string& task_dir, const std::string& short_dir, const std::string& id) {
  constexpr size_t kMax = sizeof(sockaddr_un::sun_path) - 1;
  std::string path = (fs::path(task_dir) / "cdp.sock").string();
  if (path.size() <= kMax) return path;
  path = (fs::path(short_dir) / absl::StrCat("cdp-", id, ".sock")).string();
  return path.size() <= kMax ? path : "";
}

absl::StatusOr<std::string> FindCdpRelay(const ExecutionOptions& options) {
  std::string path = options.cdp_relay;
  if (path.empty()) {
    const std::string self = WorkerBinaryPath();
    if (!self.empty()) path = (fs::path(self).parent_path() / kRelayBinary).string();
  }
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec) || access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("payload.browser: this worker lacks ", kRelayBinary, " (looked for ",
                     path.empty() ? "it beside the worker binary" : path,
                     "), which tasks in a sandbox without network need to reach their browser; install it beside "
                     "retire-cluster-worker"));
  }
  return path;
}

absl::StatusOr<std::unique_ptr<TaskBrowser>> TaskBrowser::Attach(const std::optional<TaskBrowserRequest>& request,
                                                                  const TaskContext& ctx,
                                                                  const ExecutionOptions& options, ProcessSpec* spec,
                                                                  SandboxPaths* paths) {
  std::unique_ptr<TaskBrowser> b(new TaskBrowser());
  if (!request.has_value()) return b;
  if (options.browsers == nullptr) {
    return absl::FailedPreconditionError(
        "payload.browser: this worker runs no browsers (it needs --allow browser and Chromium installed); "
        "another worker may run the task");
  }
  const bool relay = options.containment != nullptr && NeedsCdpRelay(options.containment->tier(), ctx.internet_required);
  std::string relay_binary, program;
  if (relay) {
    ASSIGN_OR_RETURN(relay_binary, FindCdpRelay(options));
    // Resolved here, on the task's PATH, so a missing program is NOT_FOUND as without a
    // browser (behind the relay its exec failure would only be an exit code 127).
    ASSIGN_OR_RETURN(program, ResolveProgram(*spec));
  }
  b->pool_ = options.browsers;
  b->request_ = request;
  b->task_id_ = ctx.task_id;
  // Waits while another task holds the profile: that wait counts against this attempt's
  // timeout (ctx.stop), like any other part of the attempt.
  ASSIGN_OR_RETURN(ProfileLease lease, b->pool_->Lease(request->profile, ctx.task_id, *ctx.stop));
  b->lease_.emplace(std::move(lease));
  absl::StatusOr<BrowserState> before = b->pool_->Status(request->profile);
  ASSIGN_OR_RETURN(BrowserState state, b->pool_->Start(request->profile, request->headless));
  b->started_ = !before.ok() || !before->running || before->pid != state.pid;
  b->cdp_url_ = absl::StrCat("http://127.0.0.1:", state.cdp_port);
  SetVariable(&spec->env, "RC_CDP_URL", b->cdp_url_);
  SetVariable(&spec->env, "RC_BROWSER_PROFILE", request->profile);
  if (!relay) return b;

  // The socket goes in the task dir, which the sandbox binds at the same path; a path too
  // long for a Unix socket moves to a short dir beside the tasks' (hidden like them) and
  // is bound into the sandbox on its own.
  const std::string short_dir = (fs::path(options.work_root).parent_path() / "s").string();
  const std::string socket = CdpSocketPath(paths->task_dir, short_dir, NewId("r"));
  if (socket.empty()) {
    return absl::UnavailableError(absl::StrCat("payload.browser: no Unix socket path short enough for the CDP relay "
                                               "under ", paths->task_dir, " or ", short_dir));
  }
  const bool outside_task_dir = fs::path(socket).parent_path() != fs::path(paths->task_dir);
  if (outside_task_dir) {
    std::error_code ec;
    fs::create_directories(short_dir, ec);
    fs::permissions(short_dir, fs::perms::owner_all, ec);
  }
  ASSIGN_OR_RETURN(RelayEndpoint listen, ParseRelayEndpoint(absl::StrCat("unix:", socket)));
  ASSIGN_OR_RETURN(RelayEndpoint target, ParseRelayEndpoint(absl::StrCat("tcp:127.0.0.1:", state.cdp_port)));
  ASSIGN_OR_RETURN(b->relay_, RelayThread::Start(listen, target));
  if (outside_task_dir) paths->read_write.push_back(socket);
  std::vector<std::string> command = spec->argv;
  command[0] = program;
  spec->argv = RelayedArgv(relay_binary, state.cdp_port, socket, command);
  // The root is read-only in the sandbox already; the bind keeps the relay visible when it
  // lies somewhere the sandbox hides (a build tree under /tmp).
  paths->read_only.push_back(relay_binary);
  return b;
}

void TaskBrowser::Finish(HandlerOutput* out) {
  if (finished_) return;
  finished_ = true;
  if (!request_.has_value()) return;
  relay_.reset();
  bool stopped = false;
  if (!request_->keep_alive && started_) {
    absl::StatusOr<BrowserState> s = pool_->Stop(request_->profile, task_id_);
    if (s.ok()) {
      stopped = true;
    } else {
      spdlog::warn("task {}: could not stop the browser of profile {} it started (keep_alive false): {}", task_id_,
                   request_->profile, s.status().ToString());
    }
  }
  lease_.reset();
  if (out == nullptr) return;
  json result = json::parse(out->result, nullptr, /*allow_exceptions=*/false);
  if (!result.is_object()) return;
  result["browser"] = {{"profile", request_->profile}, {"cdp_url", cdp_url_}, {"started", started_}, {"stopped", stopped}};
  out->result = result.dump(-1, ' ', false, json::error_handler_t::replace);
}

TaskBrowser::~TaskBrowser() { Finish(nullptr); }

}  // namespace rc::worker
