#include "worker/process/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(20);
constexpr absl::Duration kTermGrace = absl::Milliseconds(300);  // SIGTERM, then SIGKILL

void SetLimit(int resource, uint64_t value) {
  if (value == 0) return;
  rlimit r{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
  setrlimit(resource, &r);
}

struct Pipe {
  int read = -1, write = -1;
  bool Open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
  void CloseRead() {
    if (read >= 0) close(read);
    read = -1;
  }
  void CloseWrite() {
    if (write >= 0) close(write);
    write = -1;
  }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
};

// Keeps up to `cap` bytes; counts the rest.
struct Capture {
  std::string* out;
  size_t cap;
  bool* truncated;
  void Add(const char* data, size_t n) {
    size_t keep = out->size() < cap ? std::min(n, cap - out->size()) : 0;
    out->append(data, keep);
    if (keep < n) *truncated = true;
  }
};

}  // namespace

std::string FindProgram(const std::string& name, const std::string& path_var) {
  if (name.find('/') != std::string::npos) {
    // Absolute, so that it still names the same file after the child's chdir.
    return access(name.c_str(), X_OK) == 0 ? std::filesystem::absolute(name).string() : "";
  }
  for (absl::string_view dir : absl::StrSplit(path_var, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string MarkTruncated(std::string text, bool truncated, size_t cap) {
  if (truncated) absl::StrAppend(&text, "\n[output truncated at ", cap, " bytes]");
  return text;
}

absl::StatusOr<std::string> ResolveProgram(const ProcessSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("no program to run");
  std::string path_var = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& kv : spec.env) {
    if (kv.rfind("PATH=", 0) == 0) path_var = kv.substr(5);
  }
  std::string program = FindProgram(spec.argv[0], path_var);
  if (program.empty()) {
    return absl::NotFoundError(absl::StrCat("program '", spec.argv[0], "' not found (PATH=", path_var, ")"));
  }
  return program;
}

void ExecChild(const ProcessSpec& spec, pid_t parent, const char* program, char* const argv[], char* const envp[],
               int stdin_fd, int stdout_fd, int stderr_fd, int error_fd) {
  setsid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);  // the worker blocks SIGTERM/SIGINT
  signal(SIGPIPE, SIG_DFL);
  dup2(stdin_fd, 0);
  dup2(stdout_fd, 1);
  dup2(stderr_fd, 2);
  int code[2] = {0, 0};
  if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) {
    code[0] = 1;
    code[1] = errno;
  }
  for (int fd : spec.cgroup_procs_fds) {
    if (code[0] == 0 && write(fd, "0", 1) != 1) {
      code[0] = 2;
      code[1] = errno;
    }
  }
  if (code[0] == 0) {
    SetLimit(RLIMIT_AS, spec.limits.address_space_bytes);
    SetLimit(RLIMIT_CPU, spec.limits.cpu_seconds);
    SetLimit(RLIMIT_FSIZE, spec.limits.file_size_bytes);
    SetLimit(RLIMIT_NOFILE, spec.limits.open_files);
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    // Any descriptor the worker holds (another task's files, sockets) that was not
    // opened close-on-exec must not reach the child.
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int fd : spec.inherit_fds) fcntl(fd, F_SETFD, 0);
    execve(program, argv, envp);
    code[0] = 3;
    code[1] = errno;
  }
  ssize_t ignored = write(error_fd, code, sizeof(code));
  (void)ignored;
  _exit(127);
}

absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec, const StopToken& stop,
                                         const std::function<void(int pid)>& on_start) {
  absl::StatusOr<std::string> resolved = ResolveProgram(spec);
  if (!resolved.ok()) return resolved.status();
  const std::string& program = *resolved;
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  Pipe in, out, err, exec_error;
  if (!in.Open() || !out.Open() || !err.Open() || !exec_error.Open()) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    ExecChild(spec, parent, program.c_str(), argv.data(), envp.data(), in.read, out.write, err.write,
              exec_error.write);
  }
  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();
  exec_error.CloseWrite();
  int failed[2] = {0, 0};
  if (read(exec_error.read, failed, sizeof(failed)) == sizeof(failed)) {
    waitpid(pid, nullptr, 0);
    const char* why = std::strerror(failed[1]);
    if (failed[0] == 1) return absl::FailedPreconditionError(absl::StrCat("cannot enter working directory ", spec.cwd, ": ", why));
    if (failed[0] == 2) return absl::FailedPreconditionError(absl::StrCat("cannot join the task's cgroup: ", why));
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", program, ": ", why));
  }
  if (on_start) on_start(pid);
  // Polled with the pipes, so that the exit wakes the loop at once.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));

  ProcessResult result;
  result.pid = pid;
  Capture cap_out{&result.stdout, spec.output_cap, &result.stdout_truncated};
  Capture cap_err{&result.stderr, spec.output_cap, &result.stderr_truncated};
  size_t written = 0;
  if (spec.stdin_data.empty()) in.CloseWrite();
  fcntl(in.write, F_SETFL, O_NONBLOCK);
  bool exited = false;
  int status = 0;
  rusage usage{};
  // The task's time (stop token, spec.deadline) is on the token's clock, polled every
  // kPoll, so a fake clock drives it; the kill grace and the drain wait for the kernel
  // and stay in real time.
  absl::Time kill_at = absl::InfiniteFuture();  // SIGKILL after the SIGTERM grace
  absl::Time drain_until = absl::InfiniteFuture();
  char buf[65536];
  while (out.read >= 0 || err.read >= 0 || !exited) {
    if (!exited && !result.stopped && (stop.stopped() || stop.clock().Now() >= spec.deadline)) {
      result.stopped = true;
      result.deadline_passed = !stop.cancelled();
      kill(-pid, SIGTERM);
      kill_at = absl::Now() + kTermGrace;
    }
    if (absl::Now() >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = absl::InfiniteFuture();
    }
    if (!exited && wait4(pid, &status, WNOHANG, &usage) == pid) {
      exited = true;
      // Whatever it left running in its group goes with it.
      kill(-pid, SIGKILL);
      drain_until = absl::Now() + absl::Seconds(1);
    }
    if (exited && absl::Now() >= drain_until) break;  // a descendant that escaped the group holds a pipe
    pollfd fds[4];
    int n = 0;
    if (out.read >= 0) fds[n++] = {out.read, POLLIN, 0};
    if (err.read >= 0) fds[n++] = {err.read, POLLIN, 0};
    if (in.write >= 0) fds[n++] = {in.write, POLLOUT, 0};
    if (!exited && pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
    if (n == 0) {
      absl::SleepFor(absl::Milliseconds(1));  // no pidfd (old kernel): poll the exit
      continue;
    }
    if (poll(fds, n, absl::ToInt64Milliseconds(kPoll)) <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0 || fds[i].fd == pidfd) continue;
      if (fds[i].fd == in.write) {
        ssize_t w = write(in.write, spec.stdin_data.data() + written, spec.stdin_data.size() - written);
        if (w > 0) written += w;
        if (w < 0 && errno != EAGAIN) in.CloseWrite();
        if (written >= spec.stdin_data.size()) in.CloseWrite();
        continue;
      }
      Pipe& p = fds[i].fd == out.read ? out : err;
      ssize_t r = read(p.read, buf, sizeof(buf));
      if (r > 0) {
        (fds[i].fd == out.read ? cap_out : cap_err).Add(buf, r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        p.CloseRead();
      }
    }
  }
  if (!exited) {
    kill(-pid, SIGKILL);
    wait4(pid, &status, 0, &usage);
  }
  if (pidfd >= 0) close(pidfd);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.cpu_seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                       (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  result.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
  return result;
}

}  // namespace rc::worker
