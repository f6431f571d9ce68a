#pragma once
// Private to the pool's two source files (browser_pool.cc: processes; browser_leases.cc:
// leases): the per-profile table behind one mutex.

#include <sys/types.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/browser/browser_pool.h"
#include "worker/process/process_runner.h"

namespace rc::worker {

// One launched Chromium. The keeper owns its descriptors (closed when the last reference
// goes); the fields are guarded by State::mu.
// The last `lines` lines of a browser's output, joined with " | ", for messages.
std::string OutputTail(const std::string& text, size_t lines);

struct BrowserProcess {
  int pid = 0;
  int pidfd = -1;
  int out_fd = -1;  // read end of the browser's stdout+stderr
  bool exited = false;
  bool out_eof = false;
  bool stop_requested = false;
  std::string exit_text;
  std::string log;  // the last kLogRing bytes of its output
  int cdp_port = 0;
  bool headless = true;
  int64_t started_at_ms = 0;
  double cpu_prev = 0;  // group CPU seconds at the previous Status
  absl::Time cpu_prev_at;
  ~BrowserProcess() {
    if (pidfd >= 0) close(pidfd);
    if (out_fd >= 0) close(out_fd);
  }
};

struct BrowserPool::State {
  struct Profile {
    std::shared_ptr<BrowserProcess> browser;  // the latest one (maybe exited)
    bool starting = false;
    std::string holder;    // the task holding the lease; "" = free
    bool session = false;  // the holder runs its own Chromium on the dir (browser_session)
    std::string last_exit;
  };
  // A fork the keeper does for Start.
  struct Launch {
    std::string profile;
    ProcessSpec spec;
    std::string program;
    bool done = false;
    absl::Status status;
    std::shared_ptr<BrowserProcess> browser;
  };

  absl::Mutex mu;
  std::map<std::string, Profile> profiles ABSL_GUARDED_BY(mu);
  std::deque<Launch*> launches ABSL_GUARDED_BY(mu);
  bool shutdown ABSL_GUARDED_BY(mu) = false;  // no new browsers, no new leases
  bool quit ABSL_GUARDED_BY(mu) = false;      // the keeper ends
  int wake_fd = -1;                           // eventfd: wakes the keeper's poll
  std::thread keeper;

  void Wake() const;
  // Notices that the profile's browser has ended (without reaping it first, so that its
  // process group cannot be reused meanwhile), kills what is left of the group, then
  // reaps it; an end nobody asked for becomes the profile's last_exit. Non-blocking.
  void ReapLocked(Profile& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // SIGTERM to the group, SIGKILL after a grace (real time: this waits for the kernel,
  // not for a moment of a task's clock). Returns with the browser reaped.
  void StopLocked(Profile& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // browser_keeper.cc: the keeper thread's loop, and one fork for Start.
  void KeeperLoop();
  void RunLaunch(Launch* launch) ABSL_LOCKS_EXCLUDED(mu);
};

}  // namespace rc::worker
