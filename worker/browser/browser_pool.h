#pragma once
// The worker's persistent browsers (DESIGN.md "Browser automation"): at most one Chromium
// per profile, started on demand and kept between tasks. A profile's user data (cookies,
// logins) lives in <data_dir>/browser/profiles/<name> (0700), under the data dir that the
// bwrap tier hides from every task. CDP listens on 127.0.0.1 only, on a port Chromium
// chooses itself (--remote-debugging-port=0, then read from the profile's
// DevToolsActivePort file): there is never a fixed port to race for.
//
// A browser is the worker's own child, outside any attempt's process group and cgroup, so
// it survives the task that started it; it dies with the worker (death signal). A browser
// that exits without a Stop (crash, killed) is noticed (Status says so, with how it ended)
// and the next Start or Lease starts a new one.
//
// Tasks that use a profile (python_script, node_task and command with a `browser` block,
// browser_session) take its Lease first: one task per profile at a time on a worker.
//
// ISSUE-17 CONTRACT: written by the lead; H1 implements it in browser_pool.cc (and may add
// private members and helpers). Changing a public signature: tell the lead first, since H2
// (browser block) and H5 (browser_session) code against it.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "worker/execution/stop_token.h"

namespace rc::worker {

// OK for a profile name of 1..64 characters from [A-Za-z0-9._-] that is not "." or ".."
// and does not start with '.'; INVALID_ARGUMENT naming `field` ("payload.profile") and
// what is wrong otherwise ("must not contain '/'"). Pure.
absl::Status CheckProfileName(absl::string_view name, absl::string_view field);

struct BrowserOptions {
  std::string chromium;      // absolute path of the browser binary (FindChromium)
  std::string profiles_dir;  // <data_dir>/browser/profiles
  // X display for headful browsers (":99"; WorkerConfig.display). "": only headless ones
  // can start (a headful request fails naming --display).
  std::string display;
  // Chromium's own sandbox needs user namespaces or a setuid helper; as root it refuses
  // to start without --no-sandbox. True when the worker runs as root (said in the log).
  bool no_sandbox = false;
  const Clock* clock = RealClock::Get();
  absl::Duration start_timeout = absl::Seconds(30);  // until DevToolsActivePort appears
};

// The browser binary on `search_path` (chromium, chromium-browser, google-chrome); ""
// when there is none. `configured` (WorkerConfig.chromium_path), when set, is used as is
// if executable.
std::string FindChromium(const std::string& configured, const std::string& search_path);

// What `browser` tasks return (DESIGN.md): {"running", "cdp_url", "pid", "cpu_percent",
// "memory_mb", "profile"} plus "headless", "started_at" and, after a crash, "last_exit".
struct BrowserState {
  std::string profile;
  bool running = false;
  std::string cdp_url;  // "http://127.0.0.1:PORT" while running
  int cdp_port = 0;
  int pid = 0;
  bool headless = true;
  double cpu_percent = 0;  // of one core, since the previous Status of this profile
  double memory_mb = 0;    // resident memory of the browser's whole process group
  int64_t started_at_ms = 0;
  // How the last browser of this profile ended when nobody stopped it ("exited with
  // code 1", "killed by signal 9"); "" when it was stopped or never ran.
  std::string last_exit;
};

// JSON text of a BrowserState as `browser` tasks return it. Pure.
std::string BrowserStateJson(const BrowserState& state);

class BrowserPool;

// One task's hold on a profile; releases it when destroyed. Movable.
class ProfileLease {
 public:
  ProfileLease() = default;
  ProfileLease(ProfileLease&& other) noexcept;
  ProfileLease& operator=(ProfileLease&& other) noexcept;
  ProfileLease(const ProfileLease&) = delete;
  ~ProfileLease();
  const std::string& profile() const { return profile_; }

 private:
  friend class BrowserPool;
  ProfileLease(BrowserPool* pool, std::string profile) : pool_(pool), profile_(std::move(profile)) {}
  BrowserPool* pool_ = nullptr;
  std::string profile_;
};

class BrowserPool {
 public:
  // FAILED_PRECONDITION when options.chromium is empty or not executable, or the profiles
  // dir cannot be made (0700).
  static absl::StatusOr<std::shared_ptr<BrowserPool>> Create(BrowserOptions options);
  ~BrowserPool();  // stops every browser (SIGTERM, then SIGKILL after a grace)

  // The profile's browser running (started now if it was not, or if it had died), and
  // its state. A running browser is returned as it is, whatever `headless` says.
  // INVALID_ARGUMENT for a bad profile name; FAILED_PRECONDITION for a headful start
  // without a display; UNAVAILABLE when Chromium exits or writes no DevToolsActivePort
  // within start_timeout (with the last lines of its stderr).
  absl::StatusOr<BrowserState> Start(const std::string& profile, bool headless);
  // Stops the profile's browser (its state, running false, is returned; not running is
  // not an error). FAILED_PRECONDITION naming the task when a task holds the profile's
  // lease (unless `holder` is that task).
  absl::StatusOr<BrowserState> Stop(const std::string& profile, const std::string& holder = "");
  absl::StatusOr<BrowserState> Status(const std::string& profile);
  // Profiles that have a directory or a running browser, sorted.
  std::vector<std::string> Profiles() const;

  // Waits until no other task holds `profile`, then holds it for `task_id`. CANCELLED
  // when `stop` stops first (the task's cancel or deadline). While it waits, the log says
  // which task holds the profile.
  absl::StatusOr<ProfileLease> Lease(const std::string& profile, const std::string& task_id, const StopToken& stop);
  // The task holding `profile` now, if any.
  std::optional<std::string> Holder(const std::string& profile) const;

  // The profile's user-data directory (made 0700 if missing), for browser_session, which
  // starts a browser of its own on a profile it holds the lease of. FAILED_PRECONDITION
  // when the profile's persistent browser is running (two Chromiums cannot share one).
  absl::StatusOr<std::string> ProfileDirForSession(const std::string& profile);

  const BrowserOptions& options() const { return options_; }

 private:
  explicit BrowserPool(BrowserOptions options);
  friend class ProfileLease;
  void Release(const std::string& profile);
  BrowserOptions options_;
  // H1: the per-profile table (running process, lease holder) behind an annotated mutex.
  struct State;
  std::unique_ptr<State> state_;
};

// Chromium's command line for a browser on `user_data_dir` (pure; H1 and browser_session
// share it): --user-data-dir, --remote-debugging-address=127.0.0.1,
// --remote-debugging-port=0, --no-first-run, --no-default-browser-check, --headless=new when
// headless, --no-sandbox when no_sandbox, then `url` if not empty.
std::vector<std::string> ChromiumArgv(const BrowserOptions& options, const std::string& user_data_dir, bool headless,
                                      const std::string& url);

// The CDP port Chromium wrote into <user_data_dir>/DevToolsActivePort (first line), once
// the file is there and complete; NOT_FOUND while it is not, INVALID_ARGUMENT naming the
// file when it holds no port. Pure apart from reading the file.
absl::StatusOr<int> ReadDevToolsActivePort(const std::string& user_data_dir);

}  // namespace rc::worker
