#include "worker/handlers/js_host_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rc::worker {
namespace {

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HostProcess>> HostProcess::Start(const ProcessSpec& spec) {
  absl::StatusOr<std::string> resolved = ResolveProgram(spec);
  if (!resolved.ok()) return resolved.status();
  const std::string program = *resolved;
  std::vector<char*> argv, envp;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, exec_error[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, exec_error}) {
      CloseFd(&p[0]);
      CloseFd(&p[1]);
    }
  };
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
      pipe2(err, O_CLOEXEC) != 0 || pipe2(exec_error, O_CLOEXEC) != 0) {
    const int e = errno;
    close_all();
    return absl::InternalError(absl::StrCat("socketpair/pipe: ", std::strerror(e)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close_all();
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(e)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ExecChild(spec, parent, program.c_str(), argv.data(), envp.data(), in[1], out[1], err[1], exec_error[1]);
  }
  CloseFd(&in[1]);
  CloseFd(&out[1]);
  CloseFd(&err[1]);
  CloseFd(&exec_error[1]);
  int failed[2] = {0, 0};
  const bool exec_failed = read(exec_error[0], failed, sizeof(failed)) == sizeof(failed);
  CloseFd(&exec_error[0]);
  if (exec_failed) {
    waitpid(pid, nullptr, 0);
    close_all();
    const char* why = std::strerror(failed[1]);
    if (failed[0] == 1) return absl::FailedPreconditionError(absl::StrCat("cannot enter ", spec.cwd, ": ", why));
    if (failed[0] == 2) return absl::FailedPreconditionError(absl::StrCat("cannot join the cgroup: ", why));
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", program, ": ", why));
  }
  std::unique_ptr<HostProcess> p(new HostProcess());
  p->pid_ = pid;
  p->pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  p->stdout_fd_ = out[0];
  p->stderr_fd_ = err[0];
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  fcntl(in[0], F_SETFL, O_NONBLOCK);
  absl::MutexLock lock(&p->write_mu_);
  p->stdin_fd_ = in[0];
  return p;
}

HostProcess::~HostProcess() {
  CloseStdin();
  if (!exited_.has_value() && pid_ > 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  CloseFd(&pidfd_);
  CloseFd(&stdout_fd_);
  CloseFd(&stderr_fd_);
}

absl::Status HostProcess::Write(absl::string_view data, absl::Duration limit) {
  const absl::Time until = absl::Now() + limit;
  absl::MutexLock lock(&write_mu_);
  size_t done = 0;
  while (done < data.size()) {
    if (stdin_fd_ < 0) return absl::UnavailableError("its input is closed");
    const ssize_t w = send(stdin_fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      done += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("writing to it: ", std::strerror(errno)));
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(until - absl::Now());
    if (left_ms <= 0) {
      return absl::UnavailableError(absl::StrCat("it read nothing for ", absl::FormatDuration(limit)));
    }
    pollfd p{stdin_fd_, POLLOUT, 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 100)));
  }
  return absl::OkStatus();
}

void HostProcess::CloseStdin() {
  absl::MutexLock lock(&write_mu_);
  CloseFd(&stdin_fd_);
}

void HostProcess::Kill() {
  if (pid_ > 0 && !exited_.has_value()) kill(-pid_, SIGKILL);
}

std::optional<std::string> HostProcess::Exited() {
  if (exited_.has_value() || pid_ <= 0) return exited_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  // Whatever it left running in its group goes with it.
  kill(-pid_, SIGKILL);
  if (WIFSIGNALED(status)) {
    exited_ = absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  } else {
    exited_ = absl::StrCat("exit code ", WEXITSTATUS(status));
  }
  return exited_;
}

}  // namespace rc::worker
