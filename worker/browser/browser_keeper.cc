// BrowserPool's keeper thread: it forks every browser, reads their output into a small ring
// per browser and reaps them. Forking there matters: the child's death signal
// (PR_SET_PDEATHSIG) fires when the *thread* that forked it ends, and a task's thread ends
// with the task; the keeper lives as long as the pool. It blocks in poll() on each browser's
// pidfd and output pipe, so an exit nobody asked for is noticed at once and recorded as the
// profile's last_exit.
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_pool_state.h"

namespace rc::worker {
namespace {

constexpr size_t kLogRing = 16 << 10;  // output kept per browser

}  // namespace

// The last `lines` lines of `text`, for error messages.
std::string OutputTail(const std::string& text, size_t lines) {
  std::vector<absl::string_view> all = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  const size_t from = all.size() > lines ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + static_cast<std::ptrdiff_t>(from), all.end(), " | ");
}


void BrowserPool::State::RunLaunch(Launch* launch) {
  std::vector<char*> argv, envp;
  for (const std::string& a : launch->spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : launch->spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out[2] = {-1, -1}, exec_error[2] = {-1, -1};
  const int null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  absl::Status status;
  auto browser = std::make_shared<BrowserProcess>();
  if (null_in < 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(exec_error, O_CLOEXEC) != 0) {
    status = absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  } else {
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      ExecChild(launch->spec, parent, launch->program.c_str(), argv.data(), envp.data(), null_in, out[1], out[1],
                exec_error[1]);
    }
    if (pid < 0) {
      status = absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    } else {
      close(exec_error[1]);
      exec_error[1] = -1;
      int failed[2] = {0, 0};
      if (read(exec_error[0], failed, sizeof(failed)) == sizeof(failed)) {
        waitpid(pid, nullptr, 0);
        status = absl::FailedPreconditionError(
            absl::StrCat("cannot run ", launch->program, ": ", std::strerror(failed[1])));
      } else {
        browser->pid = pid;
        browser->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
        browser->out_fd = out[0];
        out[0] = -1;
        fcntl(browser->out_fd, F_SETFL, O_NONBLOCK);
      }
    }
  }
  for (int fd : {null_in, out[0], out[1], exec_error[0], exec_error[1]}) {
    if (fd >= 0) close(fd);
  }
  absl::MutexLock lock(&mu);
  launch->status = status;
  if (status.ok()) {
    launch->browser = browser;
    profiles[launch->profile].browser = browser;
  }
  launch->done = true;
}

void BrowserPool::State::KeeperLoop() {
  char buf[8192];
  while (true) {
    // The descriptors stay open while `watched` holds the browsers.
    std::vector<std::shared_ptr<BrowserProcess>> watched;
    std::vector<pollfd> fds = {{wake_fd, POLLIN, 0}};
    Launch* launch = nullptr;
    {
      absl::MutexLock lock(&mu);
      if (quit) return;
      if (!launches.empty()) {
        launch = launches.front();
        launches.pop_front();
      }
      for (auto& [name, p] : profiles) {
        BrowserProcess* b = p.browser.get();
        if (b == nullptr || (b->exited && b->out_eof)) continue;
        watched.push_back(p.browser);
        // An exited pidfd and a pipe at its end stay readable: polled, they would spin.
        if (!b->exited && b->pidfd >= 0) fds.push_back({b->pidfd, POLLIN, 0});
        if (!b->out_eof) fds.push_back({b->out_fd, POLLIN, 0});
      }
    }
    if (launch != nullptr) {
      RunLaunch(launch);
      continue;
    }
    // The timeout is a safety net for kernels without pidfds; exits and output wake it.
    poll(fds.data(), fds.size(), 500);
    if (fds[0].revents & POLLIN) {
      uint64_t n = 0;
      ssize_t ignored = read(wake_fd, &n, sizeof(n));
      (void)ignored;
    }
    std::vector<std::pair<BrowserProcess*, std::string>> output;
    std::vector<BrowserProcess*> ended_output;
    for (const auto& b : watched) {
      if (b->out_fd < 0) continue;
      std::string got;
      ssize_t r = 0;
      while ((r = read(b->out_fd, buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(r));
      if (!got.empty()) output.emplace_back(b.get(), std::move(got));
      if (r == 0) ended_output.push_back(b.get());
    }
    std::vector<std::string> crashes;
    {
      absl::MutexLock lock(&mu);
      for (auto& [b, text] : output) {
        b->log += text;
        if (b->log.size() > kLogRing) b->log.erase(0, b->log.size() - kLogRing);
      }
      for (BrowserProcess* b : ended_output) b->out_eof = true;
      for (auto& [name, p] : profiles) {
        const bool was_running = p.browser != nullptr && !p.browser->exited;
        ReapLocked(p);
        if (was_running && p.browser->exited && !p.browser->stop_requested) {
          crashes.push_back(absl::StrCat("browser of profile ", name, " (pid ", p.browser->pid, ") ",
                                         p.browser->exit_text, " without being stopped: ", OutputTail(p.browser->log, 3),
                                         "; its next use starts a new one"));
        }
      }
    }
    for (const std::string& c : crashes) spdlog::warn("{}", c);
  }
}

}  // namespace rc::worker
