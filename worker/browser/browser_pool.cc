// BrowserPool (browser_pool.h): starting, stopping and looking at browsers. The keeper
// thread that forks and reaps them is in browser_keeper.cc, leases in browser_leases.cc.
#include "worker/browser/browser_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_pool_state.h"
#include "worker/handlers/task_env.h"
#include "worker/process/process_runner.h"
#include "worker/process/process_sampler.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kTermGrace = absl::Seconds(5);    // SIGTERM -> SIGKILL
constexpr absl::Duration kPortPoll = absl::Milliseconds(50);

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("exited with code ", WEXITSTATUS(status));
}

}  // namespace

void BrowserPool::State::Wake() const {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd, &one, sizeof(one));
  (void)ignored;
}

void BrowserPool::State::ReapLocked(Profile& p) {
  BrowserProcess* b = p.browser.get();
  if (b == nullptr || b->exited || b->pid <= 0) return;
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(b->pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) {
    return;
  }
  kill(-b->pid, SIGKILL);  // renderers and helpers it left behind
  int status = 0;
  waitpid(b->pid, &status, 0);
  b->exited = true;
  b->exit_text = DescribeExit(status);
  if (!b->stop_requested) p.last_exit = b->exit_text;
}

void BrowserPool::State::StopLocked(Profile& p) {
  BrowserProcess* b = p.browser.get();
  if (b == nullptr || b->exited) return;
  b->stop_requested = true;
  kill(-b->pid, SIGTERM);
  for (absl::Time kill_at = absl::Now() + kTermGrace; !b->exited;) {
    ReapLocked(p);
    if (b->exited) break;
    if (absl::Now() >= kill_at) {
      kill(-b->pid, SIGKILL);
      kill_at = absl::InfiniteFuture();
    }
    mu.AwaitWithTimeout(absl::Condition(&b->exited), absl::Milliseconds(20));
  }
}

absl::StatusOr<std::shared_ptr<BrowserPool>> BrowserPool::Create(BrowserOptions options) {
  struct stat st {};
  if (options.chromium.empty()) return absl::FailedPreconditionError("no Chromium binary given (chromium_path)");
  if (stat(options.chromium.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || access(options.chromium.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("chromium_path: ", options.chromium, " is not an executable file"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.profiles_dir, ec);
  if (ec || chmod(options.profiles_dir.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make the browser profiles dir ", options.profiles_dir, ": ",
                     ec ? ec.message() : std::strerror(errno)));
  }
  std::shared_ptr<BrowserPool> pool(new BrowserPool(std::move(options)));
  return pool;
}

BrowserPool::BrowserPool(BrowserOptions options) : options_(std::move(options)), state_(std::make_unique<State>()) {
  state_->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  state_->keeper = std::thread([s = state_.get()] { s->KeeperLoop(); });
}

BrowserPool::~BrowserPool() {
  State& s = *state_;
  {
    absl::MutexLock lock(&s.mu);
    s.shutdown = true;
    for (auto& [name, p] : s.profiles) {
      if (p.browser != nullptr && !p.browser->exited) {
        p.browser->stop_requested = true;
        kill(-p.browser->pid, SIGTERM);
      }
    }
    for (auto& [name, p] : s.profiles) s.StopLocked(p);
    for (State::Launch* launch : s.launches) {  // none in practice: Start holds a reference to the pool
      launch->status = absl::UnavailableError("the worker is stopping its browsers");
      launch->done = true;
    }
    s.launches.clear();
    s.quit = true;
  }
  s.Wake();
  s.keeper.join();
  close(s.wake_fd);
}

namespace {

BrowserState StateOf(const std::string& name, const std::string& last_exit, const BrowserProcess* b) {
  BrowserState st;
  st.profile = name;
  st.last_exit = last_exit;
  if (b != nullptr && !b->exited && b->cdp_port > 0) {
    st.running = true;
    st.pid = b->pid;
    st.cdp_port = b->cdp_port;
    st.cdp_url = absl::StrCat("http://127.0.0.1:", b->cdp_port);
    st.headless = b->headless;
    st.started_at_ms = b->started_at_ms;
  }
  return st;
}

}  // namespace

absl::StatusOr<BrowserState> BrowserPool::Start(const std::string& profile, bool headless) {
  if (absl::Status s = CheckProfileName(profile, "profile"); !s.ok()) return s;
  State& s = *state_;
  const std::string dir = absl::StrCat(options_.profiles_dir, "/", profile);
  State::Launch launch;
  {
    absl::MutexLock lock(&s.mu);
    while (true) {
      if (s.shutdown) return absl::UnavailableError("the worker is stopping its browsers");
      State::Profile& p = s.profiles[profile];
      s.ReapLocked(p);
      if (p.browser != nullptr && !p.browser->exited && p.browser->cdp_port > 0) {
        return StateOf(profile, p.last_exit, p.browser.get());  // warm: as it is
      }
      if (!p.starting) break;
      auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return !p.starting || s.shutdown; };
      s.mu.Await(absl::Condition(&settled));
    }
    State::Profile& p = s.profiles[profile];
    if (p.session) {
      return absl::FailedPreconditionError(absl::StrCat("browser profile '", profile, "' is in use by task ", p.holder,
                                                        " (browser_session runs its own Chromium on it)"));
    }
    if (!headless && options_.display.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a headful browser needs an X display and this worker has none (start it with --display :N, or "
          "ask for headless)"));
    }
    p.starting = true;
  }
  // Outside the lock: the disk, the fork, the wait for the port.
  auto finish = [&](absl::Status status) -> absl::StatusOr<BrowserState> {
    absl::MutexLock lock(&s.mu);
    State::Profile& p = s.profiles[profile];
    p.starting = false;
    if (!status.ok()) return status;
    return StateOf(profile, p.last_exit, p.browser.get());
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || chmod(dir.c_str(), 0700) != 0) {
    return finish(absl::UnavailableError(absl::StrCat("cannot make the profile dir ", dir, ": ",
                                                      ec ? ec.message() : std::strerror(errno))));
  }
  // A port file left by an earlier browser (crashed, killed) would be read as this one's.
  std::filesystem::remove(absl::StrCat(dir, "/DevToolsActivePort"), ec);
  launch.profile = profile;
  launch.program = options_.chromium;
  launch.spec.argv = ChromiumArgv(options_, dir, headless, "");
  launch.spec.env = HostEnvironment(dir);
  // Chromium puts its SingletonSocket under TMPDIR, and a Unix socket's path has at most
  // 107 bytes: a deep data dir made Chromium abort ("Socket path too long"). It makes a
  // private (0700) directory there, so the system's /tmp is as safe.
  for (std::string& e : launch.spec.env) {
    if (absl::StartsWith(e, "TMPDIR=")) e = "TMPDIR=/tmp";
  }
  if (!headless) launch.spec.env.push_back(absl::StrCat("DISPLAY=", options_.display));
  launch.spec.cwd = dir;
  // Chromium reserves far more address space than it uses; the task rlimits are not for it.
  launch.spec.limits = ResourceLimits{0, 0, 0, 0};
  {
    absl::MutexLock lock(&s.mu);
    s.launches.push_back(&launch);
  }
  s.Wake();
  std::shared_ptr<BrowserProcess> b;
  {
    absl::MutexLock lock(&s.mu);
    s.mu.Await(absl::Condition(&launch.done));
    if (!launch.status.ok()) {
      s.profiles[profile].starting = false;
      return absl::UnavailableError(absl::StrCat("browser of profile ", profile, ": ", launch.status.message()));
    }
    b = launch.browser;
    b->headless = headless;
  }
  const absl::Time give_up = options_.clock->Now() + options_.start_timeout;
  absl::Status waited = absl::DeadlineExceededError("");
  while (true) {
    absl::StatusOr<int> port = ReadDevToolsActivePort(dir);
    absl::MutexLock lock(&s.mu);
    s.ReapLocked(s.profiles[profile]);
    if (port.ok() && !b->exited) {
      b->cdp_port = *port;
      b->started_at_ms = options_.clock->NowMs();
      b->cpu_prev_at = options_.clock->Now();
      waited = absl::OkStatus();
      break;
    }
    if (b->exited || s.shutdown) {
      // Its last words explain it: wait (briefly, for the kernel) for the keeper to read them.
      s.mu.AwaitWithTimeout(absl::Condition(&b->out_eof), absl::Seconds(1));
      waited = absl::UnavailableError(absl::StrCat("Chromium (", options_.chromium, ") for profile ", profile, " ",
                                                   b->exited ? b->exit_text : "was stopped", " before it listened: ",
                                                   OutputTail(b->log, 5)));
      break;
    }
    if (port.status().code() == absl::StatusCode::kInvalidArgument || options_.clock->Now() >= give_up) {
      s.StopLocked(s.profiles[profile]);
      waited = absl::UnavailableError(
          absl::StrCat("Chromium for profile ", profile, " wrote no DevToolsActivePort within ",
                       absl::FormatDuration(options_.start_timeout),
                       port.ok() ? "" : absl::StrCat(" (", port.status().message(), ")"), ": ", OutputTail(b->log, 5)));
      break;
    }
    auto gone = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return b->exited || s.shutdown; };
    options_.clock->AwaitWithDeadline(&s.mu, absl::Condition(&gone),
                                      std::min(give_up, options_.clock->Now() + kPortPoll));
  }
  if (waited.ok()) {
    spdlog::info("browser of profile {} started: pid {}, CDP on 127.0.0.1:{}{}", profile, b->pid, b->cdp_port,
                 headless ? "" : absl::StrCat(", on display ", options_.display));
  }
  return finish(waited);
}

absl::StatusOr<BrowserState> BrowserPool::Stop(const std::string& profile, const std::string& holder) {
  if (absl::Status st = CheckProfileName(profile, "profile"); !st.ok()) return st;
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  State::Profile& p = s.profiles[profile];
  if (!p.holder.empty() && p.holder != holder) {
    return absl::FailedPreconditionError(absl::StrCat("browser profile '", profile, "' is in use by task ", p.holder,
                                                      "; stop it once that task has ended"));
  }
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return !p.starting; };
  s.mu.Await(absl::Condition(&settled));
  const bool was_running = p.browser != nullptr && !p.browser->exited;
  s.StopLocked(p);
  p.last_exit.clear();  // stopped on purpose
  if (was_running) spdlog::info("browser of profile {} (pid {}) stopped", profile, p.browser->pid);
  return StateOf(profile, p.last_exit, nullptr);
}

absl::StatusOr<BrowserState> BrowserPool::Status(const std::string& profile) {
  if (absl::Status st = CheckProfileName(profile, "profile"); !st.ok()) return st;
  State& s = *state_;
  int pid = 0;
  {
    absl::MutexLock lock(&s.mu);
    State::Profile& p = s.profiles[profile];
    s.ReapLocked(p);
    BrowserState st = StateOf(profile, p.last_exit, p.browser.get());
    if (!st.running) return st;
    pid = st.pid;
  }
  // /proc is read outside the lock (H3's sampler, the one the Executor uses for tasks).
  absl::StatusOr<GroupUsage> sampled = SampleProcessGroup(pid);
  const GroupUsage usage = sampled.ok() ? *sampled : GroupUsage{};
  absl::MutexLock lock(&s.mu);
  State::Profile& p = s.profiles[profile];
  s.ReapLocked(p);
  BrowserState st = StateOf(profile, p.last_exit, p.browser.get());
  if (!st.running || st.pid != pid) return st;
  BrowserProcess* b = p.browser.get();
  const absl::Time now = options_.clock->Now();
  st.cpu_percent = CpuPercent(b->cpu_prev, usage.cpu_seconds, b->cpu_prev_at, now);
  st.memory_mb = static_cast<double>(usage.memory_bytes) / (1 << 20);
  b->cpu_prev = usage.cpu_seconds;
  b->cpu_prev_at = now;
  return st;
}

std::vector<std::string> BrowserPool::Profiles() const {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.profiles_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && CheckProfileName(name, "").ok()) names.insert(name);
  }
  {
    absl::MutexLock lock(&state_->mu);
    for (const auto& [name, p] : state_->profiles) {
      if (p.browser != nullptr && !p.browser->exited) names.insert(name);
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace rc::worker
