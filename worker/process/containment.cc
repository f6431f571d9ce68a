#include "worker/process/containment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "spdlog/spdlog.h"
#include "worker/execution/stop_token.h"
#include "worker/handlers/task_env.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kTrialTimeout = absl::Seconds(10);

std::string Absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path).lexically_normal().string() : p.string();
}

bool Within(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir == "/" ? dir : dir + "/");
}

// Cgroup names from task ids: letters, digits, '-' and '_' only.
std::string CgroupName(const std::string& name) {
  std::string out = "rc-";
  for (char c : name) out += absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return absl::StrCat(out, "-", NewId("c"));
}

CgroupLimits LimitsFrom(const WorkerConfig& c) {
  CgroupLimits l;
  l.memory_bytes = static_cast<int64_t>(c.cgroup_memory_mb) << 20;
  l.pids_max = c.cgroup_pids_max;
  l.cpu_percent = c.cgroup_cpu_percent;
  return l;
}

// Runs /bin/true in a sandbox built exactly as tasks' are (no network, a task dir under
// the hidden data dir). FAILED_PRECONDITION with bwrap's own complaint when it fails.
absl::Status TrialRun(const BwrapPlan& base, const std::string& work_root) {
  const std::string dir = (fs::path(work_root) / NewId("containment-check")).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  BwrapPlan plan = base;
  plan.paths.task_dir = dir;
  plan.cwd = dir;
  ProcessSpec spec;
  spec.argv = BwrapArgv(plan, {"/bin/true"});
  spec.env = HostEnvironment(dir);
  spec.cwd = dir;
  spec.deadline = absl::Now() + kTrialTimeout;
  StopToken never(absl::InfiniteFuture());
  absl::StatusOr<ProcessResult> r = RunProcess(spec, never);
  fs::remove_all(dir, ec);
  if (!r.ok()) return absl::FailedPreconditionError(absl::StrCat("cannot start ", base.bwrap, ": ", r.status().message()));
  if (r->exit_code == 0) return absl::OkStatus();
  std::string why = std::string(absl::StripAsciiWhitespace(r->stderr));
  if (r->deadline_passed) why = absl::StrCat("no answer within ", absl::FormatDuration(kTrialTimeout));
  return absl::FailedPreconditionError(absl::StrCat(
      "a trial sandbox (", base.bwrap, " with new user, PID, IPC, UTS and network namespaces) failed",
      r->exit_code >= 0 ? absl::StrCat(" with exit code ", r->exit_code) : "", why.empty() ? "" : ": ", why,
      ". User namespaces may be disabled here (sysctls user.max_user_namespaces, "
      "kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns)"));
}

}  // namespace

std::vector<std::string> BwrapArgv(const BwrapPlan& plan, const std::vector<std::string>& command) {
  std::vector<std::string> a = {plan.bwrap,       "--die-with-parent", "--unshare-user", "--unshare-pid",
                                "--unshare-ipc",  "--unshare-uts"};
  if (!plan.network) a.push_back("--unshare-net");  // only loopback, and nothing listens there
  for (const char* s : {"--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc",
                        "/proc", "--tmpfs", "/tmp"}) {
    a.push_back(s);
  }
  // Later mounts go on top of earlier ones: hide first, then open up what the task needs.
  for (const std::string& d : plan.hidden_dirs) a.insert(a.end(), {"--tmpfs", d});
  for (const std::string& f : plan.hidden_files) a.insert(a.end(), {"--ro-bind", "/dev/null", f});
  for (const std::string& p : plan.paths.read_only) a.insert(a.end(), {"--ro-bind", p, p});
  for (const std::string& p : plan.paths.read_write) a.insert(a.end(), {"--bind", p, p});
  a.insert(a.end(), {"--bind", plan.paths.task_dir, plan.paths.task_dir});
  // The sandbox's environment: read from the fd, or none at all.
  if (plan.env_args_fd >= 0) {
    a.insert(a.end(), {"--args", std::to_string(plan.env_args_fd)});
  } else {
    a.push_back("--clearenv");
  }
  a.insert(a.end(), {"--chdir", plan.cwd.empty() ? plan.paths.task_dir : plan.cwd, "--"});
  a.insert(a.end(), command.begin(), command.end());
  return a;
}

absl::StatusOr<std::string> BwrapEnvArgs(const std::vector<std::string>& env) {
  std::string out("--clearenv", sizeof("--clearenv"));  // with its NUL
  for (const std::string& kv : env) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("environment entry '", absl::CEscape(kv.substr(0, 64)),
                                                     "' is not NAME=VALUE"));
    }
    if (kv.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", absl::CEscape(kv.substr(0, eq)), " holds a NUL byte"));
    }
    for (absl::string_view part : {absl::string_view("--setenv"), absl::string_view(kv).substr(0, eq),
                                   absl::string_view(kv).substr(eq + 1)}) {
      out.append(part.data(), part.size());
      out.push_back('\0');
    }
  }
  return out;
}

AppliedContainment& AppliedContainment::operator=(AppliedContainment&& o) noexcept {
  if (this != &o) {
    if (env_fd >= 0) close(env_fd);
    cgroup = std::move(o.cgroup);
    env_fd = o.env_fd;
    o.env_fd = -1;
  }
  return *this;
}

AppliedContainment::~AppliedContainment() {
  if (env_fd >= 0) close(env_fd);
}

absl::StatusOr<std::shared_ptr<const Containment>> Containment::Create(const WorkerConfig& config) {
  const char* path = std::getenv("PATH");
  return Create(config, path != nullptr ? path : "/usr/bin:/bin");
}

absl::StatusOr<std::shared_ptr<const Containment>> Containment::Create(const WorkerConfig& config,
                                                                       const std::string& search_path) {
  if (config.containment != "process" && config.containment != "bwrap") {
    return absl::FailedPreconditionError(absl::StrCat("containment: unknown tier '", config.containment, "'"));
  }
  std::shared_ptr<Containment> c(new Containment(config.containment, CgroupSet()));
  if (c->tier_ == "bwrap") {
    c->bwrap_ = FindProgram("bwrap", search_path);
    if (c->bwrap_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "containment bwrap is unavailable: no bwrap program on PATH (", search_path,
          "); install bubblewrap (apt-get install bubblewrap) or set containment: process"));
    }
    const std::string data_dir = Absolute(config.data_dir);
    c->hidden_dirs_ = {data_dir};
    for (const std::string& file : {config.token_file, config.tls.key}) {
      if (file.empty()) continue;
      const std::string f = Absolute(file);
      std::error_code ec;
      if (fs::is_regular_file(f, ec) && !Within(f, data_dir) && !Within(f, "/tmp")) c->hidden_files_.push_back(f);
    }
    BwrapPlan plan{c->bwrap_, c->hidden_dirs_, c->hidden_files_, {}, "", false};
    if (absl::Status s = TrialRun(plan, (fs::path(data_dir) / "tasks").string()); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("containment bwrap is unavailable: ", s.message()));
    }
    spdlog::info("containment: bwrap ({}): read-only root, private /tmp, writable task dir only, {} hidden; new user, "
                 "PID, IPC, UTS namespaces; no network unless a task requires internet",
                 c->bwrap_, absl::StrJoin(c->hidden_dirs_, ", "));
  } else {
    spdlog::info("containment: process (rlimits and own process group; no filesystem or network isolation)");
  }
  c->cgroups_ = CgroupSet::Detect(LimitsFrom(config));
  if (c->cgroups_.missing().empty()) {
    spdlog::info("{}", c->cgroups_.Describe());
  } else {
    spdlog::warn("{}", c->cgroups_.Describe());
  }
  return std::shared_ptr<const Containment>(std::move(c));
}

absl::StatusOr<AppliedContainment> Containment::Apply(const SandboxPaths& paths, bool network, const std::string& name,
                                                     ProcessSpec* spec) const {
  AppliedContainment applied;
  if (tier_ == "bwrap") {
    absl::StatusOr<std::string> program = ResolveProgram(*spec);
    if (!program.ok()) return program.status();
    absl::StatusOr<std::string> env_args = BwrapEnvArgs(spec->env);
    if (!env_args.ok()) return env_args.status();
    // A memfd, not a pipe: an environment larger than a pipe's buffer cannot block here.
    applied.env_fd = memfd_create("rc-sandbox-env", MFD_CLOEXEC);
    if (applied.env_fd < 0) return absl::UnavailableError(absl::StrCat("memfd_create: ", std::strerror(errno)));
    // A worker started with fd 0-2 closed gets the memfd there, and the child's dup2 of
    // its stdin/stdout/stderr over it would hand bwrap the task's stdin as --args.
    if (applied.env_fd <= 2) {
      const int moved = fcntl(applied.env_fd, F_DUPFD_CLOEXEC, 3);
      if (moved < 0) return absl::UnavailableError(absl::StrCat("fcntl(F_DUPFD_CLOEXEC): ", std::strerror(errno)));
      close(applied.env_fd);
      applied.env_fd = moved;
    }
    for (size_t done = 0; done < env_args->size();) {
      ssize_t w = write(applied.env_fd, env_args->data() + done, env_args->size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return absl::UnavailableError(absl::StrCat("writing the sandbox environment: ", std::strerror(errno)));
      done += static_cast<size_t>(w);
    }
    if (lseek(applied.env_fd, 0, SEEK_SET) != 0) {
      return absl::UnavailableError(absl::StrCat("lseek on the sandbox environment: ", std::strerror(errno)));
    }
    BwrapPlan plan{bwrap_, hidden_dirs_, hidden_files_, {Absolute(paths.task_dir), {}, {}}, "", network, applied.env_fd};
    for (const std::string& p : paths.read_only) plan.paths.read_only.push_back(Absolute(p));
    for (const std::string& p : paths.read_write) plan.paths.read_write.push_back(Absolute(p));
    plan.cwd = spec->cwd.empty() ? plan.paths.task_dir : Absolute(spec->cwd);
    std::vector<std::string> command = spec->argv;
    command[0] = *program;
    spec->argv = BwrapArgv(plan, command);
    spec->env = HostEnvironment(plan.paths.task_dir);
    spec->inherit_fds.push_back(applied.env_fd);
  }
  absl::StatusOr<std::unique_ptr<TaskCgroup>> cg = cgroups_.Create(CgroupName(name));
  if (!cg.ok()) return cg.status();
  if (*cg != nullptr) spec->cgroup_procs_fds = (*cg)->procs_fds();
  applied.cgroup = std::move(*cg);
  return applied;
}

bool Containment::WouldExpose(const std::string& path) const {
  if (tier_ != "bwrap") return false;
  const std::string p = Absolute(path);
  // Tasks get a private /tmp and /dev/shm, so secret files there are not in hidden_files_:
  // binding any of it would uncover the host's.
  for (const char* private_dir : {"/tmp", "/dev/shm"}) {
    if (Within(p, private_dir) || Within(private_dir, p)) return true;
  }
  for (const std::string& hidden : hidden_dirs_) {
    if (Within(p, hidden) || Within(hidden, p)) return true;
  }
  for (const std::string& hidden : hidden_files_) {
    if (Within(p, hidden) || Within(hidden, p)) return true;
  }
  return false;
}

}  // namespace rc::worker
