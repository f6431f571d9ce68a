#include "worker/handlers/js_engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(50);
constexpr absl::Duration kWriteLimit = absl::Seconds(10);  // a host that reads nothing this long is stuck
constexpr absl::Duration kStopGrace = absl::Seconds(2);    // EOF on stdin, then SIGKILL
constexpr absl::Duration kDrain = absl::Seconds(1);        // output after the exit (or exit after EOF)
constexpr absl::Duration kHealthyLife = absl::Seconds(10);  // a host that lived this long restarts at once
constexpr size_t kMaxLine = size_t{64} << 20;  // a larger message means the host is broken
constexpr size_t kStderrTail = 2000;

// Appends what `fd` has now to *buf; false at EOF or an error (the fd is then closed).
bool ReadSome(int* fd, std::string* buf) {
  char chunk[65536];
  while (true) {
    const ssize_t r = read(*fd, chunk, sizeof(chunk));
    if (r > 0) {
      buf->append(chunk, static_cast<size_t>(r));
      if (buf->size() > kMaxLine + sizeof(chunk)) return true;  // the caller checks the size
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    *fd = -1;  // EOF or error: the HostProcess closes it
    return false;
  }
}

// Whole lines taken off the front of *buf (without their '\n').
std::vector<std::string> TakeLines(std::string* buf) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = buf->find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.emplace_back(*buf, start, nl - start);
  }
  buf->erase(0, start);
  return lines;
}

}  // namespace

void JsInbox::Post(JsEvent event) {
  absl::MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

std::vector<JsEvent> JsInbox::Take(absl::Duration limit) {
  absl::MutexLock lock(&mu_);
  auto has_events = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&has_events), limit);
  std::vector<JsEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

JsEngine::JsEngine(JsEngineOptions options) : options_(std::move(options)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  supervisor_ = std::thread([this] { Supervise(); });
}

JsEngine::~JsEngine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  supervisor_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void JsEngine::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

absl::Status JsEngine::Attach(const std::string& id, std::shared_ptr<JsInbox> inbox, const StopToken& stop) {
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return state_ != State::kStarting || stopping_; };
  while (true) {
    if (stopping_) return absl::UnavailableError("js engine is not running: the worker is stopping");
    if (state_ == State::kReady && host_ != nullptr) {
      if (!inboxes_.emplace(id, std::move(inbox)).second) {
        return absl::AlreadyExistsError(absl::StrCat("js task ", id, " is running already"));
      }
      return absl::OkStatus();
    }
    if (state_ == State::kDown) return absl::UnavailableError(absl::StrCat("js engine is not running: ", down_reason_));
    if (stop.stopped()) return absl::CancelledError("stopped while the js engine was starting");
    // Polled: the stop token has no way to wake us.
    mu_.AwaitWithTimeout(absl::Condition(&settled), absl::Milliseconds(20));
  }
}

absl::Status JsEngine::Send(const nlohmann::json& message) {
  std::shared_ptr<HostProcess> host;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kReady || host_ == nullptr) {
      return absl::UnavailableError(absl::StrCat("js engine is not running: ",
                                                 down_reason_.empty() ? "it is restarting" : down_reason_));
    }
    host = host_;
  }
  const std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  absl::Status s = host->Write(line, kWriteLimit);
  if (!s.ok()) {
    KillHost(absl::StrCat("it did not take a message: ", s.message()));
    return absl::UnavailableError(absl::StrCat("js engine: ", s.message()));
  }
  return absl::OkStatus();
}

void JsEngine::Cancel(const std::string& id) {
  bool running;
  {
    absl::MutexLock lock(&mu_);
    inboxes_.erase(id);
    running = state_ == State::kReady && host_ != nullptr;
    // Armed before the message goes, so that a quick `done` always finds it to disarm;
    // only for the running host (its end clears them all).
    if (running) cancels_[id] = options_.clock->Now() + options_.cancel_grace;
  }
  if (running) (void)Send({{"op", "cancel"}, {"id", id}});
  Wake();
}

void JsEngine::Detach(const std::string& id) {
  absl::MutexLock lock(&mu_);
  inboxes_.erase(id);
}

bool JsEngine::WaitReady(absl::Duration limit) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return state_ == State::kReady || stopping_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), limit);
  return state_ == State::kReady;
}

int JsEngine::host_pid() const {
  absl::MutexLock lock(&mu_);
  return host_ != nullptr ? host_->pid() : 0;
}

int JsEngine::starts() const {
  absl::MutexLock lock(&mu_);
  return starts_;
}

void JsEngine::KillHost(const std::string& why) {
  absl::MutexLock lock(&mu_);
  if (host_ == nullptr) return;
  if (kill_reason_.empty()) {
    kill_reason_ = why;
    spdlog::warn("js engine: killing the host (pid {}): {}", host_->pid(), why);
  }
  host_->Kill();
}

absl::StatusOr<std::shared_ptr<HostProcess>> JsEngine::Spawn(int generation, std::unique_ptr<TaskDir>* dir,
                                                             AppliedContainment* applied) {
  absl::StatusOr<TaskDir> made = TaskDir::Create(options_.work_root, "js-engine", generation);
  if (!made.ok()) return made.status();
  *dir = std::make_unique<TaskDir>(std::move(*made));
  const std::string& d = (*dir)->path();
  ProcessSpec spec;
  spec.argv = {options_.node, (std::filesystem::path(options_.dir) / "host.js").string(), "--threads",
               std::to_string(options_.threads)};
  // Nothing of the worker's environment: the host needs none, and a sandbox gets only this.
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", absl::StrCat("HOME=", d), absl::StrCat("TMPDIR=", d),
              "LANG=C.UTF-8"};
  spec.cwd = d;
  spec.limits = options_.limits;
  spec.limits.address_space_bytes = 0;  // ~10 GiB reserved per wasm memory (the memory cap is the host's)
  spec.limits.cpu_seconds = 0;          // it lives across tasks; each task has its deadline
  if (options_.containment != nullptr) {
    absl::StatusOr<AppliedContainment> a =
        options_.containment->Apply(SandboxPaths{d, {options_.dir}}, /*network=*/false, "js-engine", &spec);
    if (!a.ok()) return a.status();
    *applied = std::move(*a);
  }
  absl::StatusOr<std::unique_ptr<HostProcess>> p = HostProcess::Start(spec);
  if (!p.ok()) return p.status();
  return std::shared_ptr<HostProcess>(std::move(*p));
}

void JsEngine::Supervise() {
  absl::Duration backoff = options_.restart_backoff_initial;
  int quick_deaths = 0;
  for (int generation = 1;; ++generation) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      state_ = State::kStarting;
      kill_reason_.clear();
      ++starts_;
    }
    // Both outlive the host: its directory, cgroup and sandbox environment.
    std::unique_ptr<TaskDir> dir;
    AppliedContainment applied;
    const absl::Time started = options_.clock->Now();
    absl::StatusOr<std::shared_ptr<HostProcess>> host = Spawn(generation, &dir, &applied);
    std::string why;
    bool was_ready = false;
    if (!host.ok()) {
      why = absl::StrCat("cannot start node ", options_.dir, "/host.js: ", host.status().message());
    } else {
      {
        absl::MutexLock lock(&mu_);
        host_ = *host;
      }
      why = Serve(*host);
    }
    // Its tasks hear why; nothing is routed to them any more.
    absl::flat_hash_map<std::string, std::shared_ptr<JsInbox>> orphans;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      was_ready = state_ == State::kReady;
      host_.reset();
      orphans.swap(inboxes_);
      cancels_.clear();
      stopping = stopping_;
      const bool quick = !was_ready || options_.clock->Now() - started < kHealthyLife;
      quick_deaths = quick ? quick_deaths + 1 : 0;
      if (!quick) backoff = options_.restart_backoff_initial;
      // A host that never got ready (or keeps dying young) waits before the next try;
      // meanwhile tasks fail at once, naming why.
      const bool wait = !was_ready || quick_deaths >= 3;
      state_ = wait ? State::kDown : State::kStarting;
      down_reason_ = why;
    }
    for (auto& [id, inbox] : orphans) inbox->Post(JsEvent{JsEvent::Kind::kEngineExited, {}, why});
    if (stopping) return;
    if (was_ready && quick_deaths < 3) {
      spdlog::warn("js engine exited ({}); restarting it", why);
      continue;
    }
    spdlog::error("js engine {}: {}; next try in {}", was_ready ? "keeps exiting" : "did not start", why,
                  absl::FormatDuration(backoff));
    {
      absl::MutexLock lock(&mu_);
      options_.clock->AwaitWithDeadline(&mu_, absl::Condition(&stopping_), options_.clock->Now() + backoff);
    }
    backoff = std::min(backoff * 2, options_.restart_backoff_max);
  }
}

std::string JsEngine::Serve(const std::shared_ptr<HostProcess>& host) {
  int out_fd = host->stdout_fd(), err_fd = host->stderr_fd();
  std::string out_buf, err_buf, err_tail;
  const absl::Time ready_by = options_.clock->Now() + options_.ready_timeout;
  bool closing = false;
  absl::Time kill_at = absl::InfiniteFuture();  // real time
  absl::Time drain_until = absl::InfiniteFuture();
  std::optional<std::string> exited;
  while (true) {
    bool close_now = false;
    {
      absl::MutexLock lock(&mu_);
      close_now = stopping_ && !closing;
      const absl::Time now = options_.clock->Now();
      if (state_ == State::kStarting && now >= ready_by && kill_reason_.empty()) {
        kill_reason_ = absl::StrCat("it was not ready within ", absl::FormatDuration(options_.ready_timeout));
        host->Kill();
      }
      for (const auto& [id, at] : cancels_) {
        if (now < at || !kill_reason_.empty()) continue;
        kill_reason_ = absl::StrCat("the watchdog: task ", id, " did not stop within ",
                                    absl::FormatDuration(options_.cancel_grace), " of its cancel");
        host->Kill();
      }
    }
    if (close_now) {
      closing = true;
      host->CloseStdin();  // the host exits at EOF
      kill_at = absl::Now() + kStopGrace;
    }
    if (absl::Now() >= kill_at) {
      host->Kill();
      kill_at = absl::InfiniteFuture();
    }
    if (!exited.has_value()) exited = host->Exited();
    const bool pipes_done = out_fd < 0 && err_fd < 0;
    if (exited.has_value() && pipes_done) break;
    if ((exited.has_value() || pipes_done) && drain_until == absl::InfiniteFuture()) {
      drain_until = absl::Now() + kDrain;
    }
    if (absl::Now() >= drain_until) {
      if (exited.has_value()) break;  // something it started holds the pipes
      host->Kill();                   // it closed its output but lives on
      drain_until = absl::Now() + kDrain;
    }
    pollfd fds[4];
    int n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (wake_fd_ >= 0) fds[n++] = {wake_fd_, POLLIN, 0};
    if (!exited.has_value() && host->exit_fd() >= 0) fds[n++] = {host->exit_fd(), POLLIN, 0};
    if (poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(kPoll))) <= 0) continue;
    uint64_t drained;
    if (wake_fd_ >= 0) (void)!read(wake_fd_, &drained, sizeof(drained));
    if (out_fd >= 0) {
      ReadSome(&out_fd, &out_buf);
      for (const std::string& line : TakeLines(&out_buf)) Route(line);
      if (out_buf.size() > kMaxLine) {
        KillHost(absl::StrCat("it sent a line over ", kMaxLine >> 20, " MiB"));
        out_buf.clear();
      }
    }
    if (err_fd >= 0) {
      ReadSome(&err_fd, &err_buf);
      if (err_fd < 0 && !err_buf.empty()) err_buf.push_back('\n');
      for (const std::string& line : TakeLines(&err_buf)) {
        spdlog::info("js engine: {}", line);
        absl::StrAppend(&err_tail, line, "\n");
      }
      if (err_buf.size() > kStderrTail) err_buf.erase(0, err_buf.size() - kStderrTail);
      if (err_tail.size() > kStderrTail) err_tail.erase(0, err_tail.size() - kStderrTail);
    }
  }
  std::string why = exited.value_or("ended");
  {
    absl::MutexLock lock(&mu_);
    if (!kill_reason_.empty()) why = absl::StrCat(kill_reason_, " (", why, ")");
  }
  const absl::string_view tail = absl::StripTrailingAsciiWhitespace(err_tail);
  if (!tail.empty()) absl::StrAppend(&why, "; its stderr ends: ", tail);
  return why;
}

void JsEngine::Route(absl::string_view line) {
  if (line.empty()) return;
  nlohmann::json m = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) {
    spdlog::warn("js engine: ignoring a line that is not a JSON object: {}", std::string(line.substr(0, 200)));
    return;
  }
  const auto op = m.find("op");
  if (op == m.end() || !op->is_string()) return;
  if (*op == "ready") {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kStarting) return;
    state_ = State::kReady;
    down_reason_.clear();
    spdlog::info("js engine ready: pid {}, {}", host_ != nullptr ? host_->pid() : 0, std::string(line.substr(0, 300)));
    return;
  }
  const auto id = m.find("id");
  if (id == m.end() || !id->is_string()) return;
  std::shared_ptr<JsInbox> inbox;
  {
    absl::MutexLock lock(&mu_);
    if (*op == "done") cancels_.erase(id->get<std::string>());
    auto it = inboxes_.find(id->get<std::string>());
    if (it != inboxes_.end()) inbox = it->second;
  }
  if (inbox != nullptr) inbox->Post(JsEvent{JsEvent::Kind::kMessage, std::move(m), ""});
}

}  // namespace rc::worker
