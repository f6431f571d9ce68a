// `browser_session` (opt-in: --allow browser_session): a Chromium of the attempt's own,
// opened on payload.url, the attempt running while it lives and ending on the browser's
// exit or on a callback (worker/browser/browser_session.h holds the rules).
//
// Where the browser runs, and why not inside the task's containment: Chromium runs as the
// worker's own child, like the pool's persistent browsers (browser_pool.h), with the
// runner's process group, death signal and fixed host environment, but neither under
// bwrap nor in the attempt's cgroup, and without the task rlimits on address space and CPU:
//   - RLIMIT_AS: V8 reserves tens of GiB of virtual memory up front (its pointer-compression
//     cage, WebAssembly guard regions); here Chromium 156 dies at start (SIGTRAP) under an
//     address-space limit of 4 GiB (the worker's default for tasks) and even of 16 GiB. It
//     is resident memory that matters, which the sampler reports live.
//   - the task cgroup: its limits (cgroup_memory_mb, cgroup_pids_max) are sized for scripts,
//     and pids.max counts threads (38 for one headless page here, more per tab); and the
//     worker offers the cgroup only together with its tier (Containment::Apply).
//   - bwrap: the browser needs the network (the URL may be anywhere, so the loopback-only
//     namespace cannot apply), a real /dev/shm, and, with payload.profile, its profile
//     directory under the worker's data dir, which is exactly what bwrap hides from tasks.
// What the task chooses is only a URL (schemes limited by CheckSessionUrl) and a profile
// name: no program of the task's runs outside a sandbox. The trust this asks for is the
// operator's, who enables browser_session (like `browser`) by name in --allow. Chromium
// itself runs with --no-sandbox when the worker is root (BrowserOptions.no_sandbox), so a
// renderer exploit in a visited page is not contained by Chromium either: allow
// browser sessions only on workers meant to visit the pages their tasks name.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_handlers.h"
#include "worker/browser/browser_pool.h"
#include "worker/browser/browser_session.h"
#include "worker/process/process_sampler.h"
#include "worker/process/task_process.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(100);
// After SIGTERM to the browser process alone (it closes its renderers and writes cookies
// and history to its profile), the runner kills the whole group. Headless Chromium quits
// within a few hundred ms; the grace is a bound, not a wait.
constexpr absl::Duration kQuitGrace = absl::Seconds(3);
// How often the final usage samples the browser's whole group (the live samples are the
// Executor's sampler's; these only keep the peak for TaskFinished.usage).
constexpr absl::Duration kUsageSample = absl::Seconds(1);

// Task limits, minus those that break Chromium (see the file comment).
ResourceLimits BrowserLimits(const ResourceLimits& task) {
  ResourceLimits l;
  l.address_space_bytes = 0;
  l.cpu_seconds = 0;  // a session may last hours; the task's timeout bounds it
  l.file_size_bytes = task.file_size_bytes;
  // Chromium keeps a descriptor per socket, shared-memory region and cache file.
  l.open_files = task.open_files == 0 ? 0 : std::max<uint64_t>(task.open_files, 8192);
  return l;
}

// Chromium under the process runner on a thread of its own, so that the handler can
// watch the completion inbox, the stop token and DevToolsActivePort while it runs. The
// runner keeps its guarantees: own process group, death signal, the group killed when
// the browser's main process ends or `kill_` stops.
class RunningBrowser {
 public:
  RunningBrowser(ProcessSpec spec, const Clock* clock, std::function<void(int)> on_start)
      : spec_(std::move(spec)), kill_(absl::InfiniteFuture(), clock), on_start_(std::move(on_start)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RunningBrowser() {
    Stop();
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    if (pidfd_ >= 0) close(pidfd_);
  }
  RunningBrowser(const RunningBrowser&) = delete;

  int pid() const {
    absl::MutexLock lock(&mu_);
    return pid_;
  }
  bool finished() const {
    absl::MutexLock lock(&mu_);
    return result_.has_value();
  }

  // Asks the browser to quit (SIGTERM to its main process, through a pidfd, so that a
  // recycled pid is never signalled), then has the runner kill its group if it has not
  // quit within kQuitGrace. Returns once it has ended.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (result_.has_value()) return;
      if (pidfd_ >= 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGTERM, nullptr, 0);
      auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_.has_value(); };
      // Real time: this waits for the kernel, as the runner's own kill grace does.
      if (mu_.AwaitWithTimeout(absl::Condition(&ended), kQuitGrace)) return;
    }
    kill_.Cancel();
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_.has_value(); };
    mu_.Await(absl::Condition(&ended));
  }

  // The runner's result once the browser has ended (call after finished() or Stop()).
  absl::StatusOr<ProcessResult> Result() const {
    absl::MutexLock lock(&mu_);
    return *result_;
  }

 private:
  void Run() {
    absl::StatusOr<ProcessResult> r = RunProcess(spec_, kill_, [this](int pid) {
      {
        // Called before the runner waits for the child, so the pid still names it.
        absl::MutexLock lock(&mu_);
        pid_ = pid;
        pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      }
      if (on_start_) on_start_(pid);
    });
    absl::MutexLock lock(&mu_);
    result_ = std::move(r);
  }

  const ProcessSpec spec_;
  StopToken kill_;
  const std::function<void(int)> on_start_;
  mutable absl::Mutex mu_;
  int pid_ ABSL_GUARDED_BY(mu_) = 0;
  int pidfd_ ABSL_GUARDED_BY(mu_) = -1;
  std::optional<absl::StatusOr<ProcessResult>> result_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once every member above exists
};

// A private (0700) directory with a short path, removed with its contents when this
// object goes away: Chromium's TMPDIR (SessionEnvInputs.tmp_dir says why it must be short).
class ShortTempDir {
 public:
  // UNAVAILABLE naming the template when mkdtemp fails.
  static absl::StatusOr<ShortTempDir> Create() {
    std::string path = "/tmp/rc-browser-XXXXXX";
    if (mkdtemp(path.data()) == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot make a directory /tmp/rc-browser-XXXXXX: ", std::strerror(errno)));
    }
    return ShortTempDir(std::move(path));
  }
  ShortTempDir(ShortTempDir&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ShortTempDir(const ShortTempDir&) = delete;
  ~ShortTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit ShortTempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string Tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : absl::StrCat("...", text.substr(text.size() - n));
}

class BrowserSessionHandler final : public Handler {
 public:
  BrowserSessionHandler(std::shared_ptr<BrowserPool> pool, ExecutionOptions options)
      : pool_(std::move(pool)), options_(std::move(options)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(SessionRequest req, ParseSessionRequest(ctx.payload));
    if (pool_ == nullptr) {
      return absl::FailedPreconditionError("browser_session: this worker runs no browsers (no Chromium found)");
    }
    const BrowserOptions& browser = pool_->options();
    ASSIGN_OR_RETURN(bool headless, ChooseHeadless(req.headless, browser.display));
    if (req.complete_on == CompleteOn::kCallback) {
      // Neither is the payload's fault: another worker (or a coordinator issuing task
      // tokens) can run it.
      if (ctx.completion == nullptr) {
        return absl::FailedPreconditionError("payload.complete_on: this worker cannot receive callbacks for its tasks");
      }
      if (ctx.task_token.empty()) {
        return absl::FailedPreconditionError(
            "payload.complete_on: the attempt has no task token, so no callback could authenticate");
      }
    }

    ASSIGN_OR_RETURN(TaskDir dir, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    ASSIGN_OR_RETURN(ShortTempDir tmp, ShortTempDir::Create());
    ProfileLease lease;  // released (after the browser has ended: declared before it) on return
    std::string profile_dir;
    if (req.profile.empty()) {
      profile_dir = (std::filesystem::path(dir.path()) / "profile").string();  // goes with the task dir
      std::error_code ec;
      std::filesystem::create_directory(profile_dir, ec);
      if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", profile_dir, ": ", ec.message()));
    } else {
      ASSIGN_OR_RETURN(lease, pool_->Lease(req.profile, ctx.task_id, *ctx.stop));
      ASSIGN_OR_RETURN(profile_dir, pool_->ProfileDirForSession(req.profile));
    }
    // A port file left by an earlier browser of this profile would name a dead port.
    std::error_code ec;
    std::filesystem::remove(std::filesystem::path(profile_dir) / "DevToolsActivePort", ec);

    ProcessSpec spec;
    spec.argv = ChromiumArgv(browser, profile_dir, headless, req.url);
    spec.env = SessionEnvironment(
        {dir.path(), tmp.path(), headless ? "" : browser.display, ctx.task_id, ctx.callback_url, ctx.task_token});
    spec.cwd = dir.path();
    spec.limits = BrowserLimits(options_.limits);
    spec.output_cap = options_.output_cap;

    const Clock& clock = ctx.stop->clock();
    const absl::Time port_deadline = clock.Now() + browser.start_timeout;
    SessionEnd end{std::nullopt, false, -1, 0, ctx.task_id, req.url, 0, ""};
    absl::Status start_failure;
    // The runner's rusage covers the browser process and the children it reaped, not the
    // renderers (the zygote reaps those) nor processes killed with the group: the group's
    // samples fill that in. peak_rss_bytes is of the largest process (task.proto).
    double group_cpu = 0;
    int64_t group_peak = 0;
    absl::Time next_sample = clock.Now();
    RunningBrowser running(std::move(spec), &clock, ctx.on_process_start);
    for (;;) {
      if (ctx.completion != nullptr) end.completion = ctx.completion->Get();
      if (end.completion.has_value()) break;
      if (running.finished()) {
        end.exited = true;
        // It may have come up since the last poll and gone at once.
        if (absl::StatusOr<int> port = ReadDevToolsActivePort(profile_dir); end.cdp_url.empty() && port.ok()) {
          end.cdp_url = absl::StrCat("http://127.0.0.1:", *port);
        }
        break;
      }
      if (ctx.stop->stopped()) break;
      if (running.pid() != 0 && clock.Now() >= next_sample) {
        if (absl::StatusOr<GroupUsage> now = SampleProcessGroup(running.pid()); now.ok()) {
          group_cpu = std::max(group_cpu, now->cpu_seconds);
          group_peak = std::max(group_peak, now->largest_rss_bytes);
        }
        next_sample = clock.Now() + kUsageSample;
      }
      if (end.cdp_url.empty() && running.pid() != 0) {
        absl::StatusOr<int> port = ReadDevToolsActivePort(profile_dir);
        if (port.ok()) {
          end.cdp_url = absl::StrCat("http://127.0.0.1:", *port);
        } else if (clock.Now() >= port_deadline) {
          start_failure = absl::UnavailableError(absl::StrCat(
              "Chromium wrote no DevToolsActivePort within ", absl::FormatDuration(browser.start_timeout),
              port.status().code() == absl::StatusCode::kNotFound ? "" : absl::StrCat(" (", port.status().message(), ")")));
          break;
        }
      }
      ctx.stop->WaitUntil(clock.Now() + kPoll);
    }
    running.Stop();  // nothing when it has exited already
    end.pid = running.pid();
    ASSIGN_OR_RETURN(ProcessResult r, running.Result());  // the runner's errors: Chromium missing, ...
    if (end.exited) {
      end.exit_code = r.exit_code;
      end.signal = r.signal;
    }
    HandlerOutput out = FromProcess(r, options_.output_cap);
    out.usage.set_cpu_seconds(std::max(out.usage.cpu_seconds(), group_cpu));
    out.usage.set_peak_rss_bytes(std::max(out.usage.peak_rss_bytes(), group_peak));
    if (!start_failure.ok()) {
      return absl::Status(start_failure.code(),
                          absl::StrCat(start_failure.message(), "; its stderr ends: ", Tail(out.stderr, 1000)));
    }
    SessionOutcome outcome = DecideSessionOutcome(req.complete_on, end);
    if (end.completion.has_value()) {
      spdlog::info("browser_session {}: completed by callback ({}), browser pid {} stopped", ctx.task_id,
                   outcome.failure.ok() ? "success" : "failed", end.pid);
    }
    out.result = std::move(outcome.result);
    out.failure = std::move(outcome.failure);
    return out;
  }

 private:
  const std::shared_ptr<BrowserPool> pool_;
  const ExecutionOptions options_;
};

}  // namespace

std::unique_ptr<Handler> MakeBrowserSessionHandler(std::shared_ptr<BrowserPool> pool, const ExecutionOptions& options) {
  return std::make_unique<BrowserSessionHandler>(std::move(pool), options);
}

}  // namespace rc::worker
