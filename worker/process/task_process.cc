#include "worker/process/task_process.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"

namespace rc::worker {

ExecutionOptions ExecutionOptions::FromConfig(const WorkerConfig& c, std::shared_ptr<const Containment> containment) {
  ExecutionOptions o;
  o.containment = std::move(containment);
  o.work_root = (std::filesystem::path(c.data_dir) / "tasks").string();
  o.limits.address_space_bytes = static_cast<uint64_t>(c.limit_address_space_mb) << 20;
  o.limits.cpu_seconds = static_cast<uint64_t>(c.limit_cpu_seconds);
  o.limits.file_size_bytes = static_cast<uint64_t>(c.limit_file_size_mb) << 20;
  o.limits.open_files = static_cast<uint64_t>(c.limit_open_files);
  o.output_cap = static_cast<size_t>(c.output_cap_bytes);
  o.pass_env = c.pass_env;
  return o;
}

absl::StatusOr<TaskDir> TaskDir::Create(const std::string& root, const std::string& task_id, int attempt) {
  // The random suffix keeps a leftover directory of a crashed worker from being reused.
  std::string path = (std::filesystem::path(root) / absl::StrCat(task_id, "-", attempt, "-", NewId("d"))).string();
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create task directory ", path, ": ", ec.message()));
  std::filesystem::permissions(path, std::filesystem::perms::owner_all, ec);
  return TaskDir(std::move(path));
}

TaskDir::~TaskDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TaskEnvironment(const ExecutionOptions& options, const std::string& dir,
                                         const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", dir}, {"TMPDIR", dir}, {"LANG", "C.UTF-8"}};
  for (const std::string& name : options.pass_env) {
    if (const char* v = std::getenv(name.c_str())) env[name] = v;
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

HandlerOutput FromProcess(const ProcessResult& r, size_t cap) {
  HandlerOutput out;
  out.stdout = MarkTruncated(r.stdout, r.stdout_truncated, cap);
  out.stderr = MarkTruncated(r.stderr, r.stderr_truncated, cap);
  out.exit_code = r.exit_code;
  out.usage.set_cpu_seconds(r.cpu_seconds);
  out.usage.set_peak_rss_bytes(r.peak_rss_bytes);
  if (r.signal != 0 && !r.stopped) {
    out.failure = absl::AbortedError(absl::StrCat("killed by signal ", r.signal, " (", strsignal(r.signal), ")"));
  } else if (r.exit_code != 0 && !r.stopped) {
    out.failure = absl::AbortedError(absl::StrCat("exit code ", r.exit_code));
  }
  return out;
}

absl::StatusOr<ProcessResult> RunInSandbox(ProcessSpec spec, const SandboxPaths& paths, bool network,
                                           const std::string& name, const StopToken& stop,
                                           const std::function<void(int pid)>& on_start,
                                           const ExecutionOptions& options) {
  if (options.containment == nullptr) return RunProcess(spec, stop, on_start);
  // Held until the process has ended: its cgroup kills leftovers and is removed.
  absl::StatusOr<AppliedContainment> applied = options.containment->Apply(paths, network, name, &spec);
  if (!applied.ok()) return applied.status();
  return RunProcess(spec, stop, on_start);
}

absl::StatusOr<ProcessResult> RunContained(ProcessSpec spec, const SandboxPaths& paths, const TaskContext& ctx,
                                           const ExecutionOptions& options) {
  // The attempt's socket to the cluster lives exactly as long as its process here.
  std::unique_ptr<TaskSocket> socket;
  SandboxPaths sandbox = paths;
  if (ctx.open_socket) {
    absl::StatusOr<std::unique_ptr<TaskSocket>> opened = ctx.open_socket(paths.task_dir);
    if (!opened.ok()) return opened.status();
    socket = std::move(*opened);
  }
  if (socket != nullptr) {
    AddSocketEnvironment(*socket, &spec.env);
    // A socket outside the task dir (its path there was too long) is bound on its own.
    if (socket->outside_task_dir()) sandbox.read_write.push_back(socket->path());
  }
  return RunInSandbox(std::move(spec), sandbox, ctx.internet_required, absl::StrCat(ctx.task_id, "-", ctx.attempt),
                      *ctx.stop, ctx.on_process_start, options);
}

absl::StatusOr<HandlerOutput> RunTaskProcess(ProcessSpec spec, const SandboxPaths& paths, const TaskContext& ctx,
                                             const ExecutionOptions& options, std::optional<double> timeout,
                                             const char* timeout_field) {
  spec.limits = options.limits;
  spec.output_cap = options.output_cap;
  if (timeout.has_value()) spec.deadline = ctx.stop->clock().Now() + absl::Seconds(*timeout);
  absl::StatusOr<ProcessResult> r = RunContained(std::move(spec), paths, ctx, options);
  if (!r.ok()) return r.status();
  HandlerOutput out = FromProcess(*r, options.output_cap);
  if (r->deadline_passed && !ctx.stop->stopped()) {
    out.failure = absl::DeadlineExceededError(absl::StrCat("payload.", timeout_field, ": killed after ", *timeout, "s"));
  }
  out.result = nlohmann::json{{"exit_code", r->exit_code}, {"stdout", out.stdout}, {"stderr", out.stderr}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

}  // namespace rc::worker
