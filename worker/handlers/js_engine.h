#pragma once
// The engine host of `js` tasks: one long-lived `node host.js` per worker (worker/js),
// running QuickJS (WebAssembly) on engine threads, spoken to in line-delimited JSON on its
// stdin/stdout (the wire protocol of I16_COMMON.md: run / call_result / cancel in; ready /
// log / call / done out). Every message but `ready` names the attempt it is for ("<task
// id>/<attempt>"); one reader thread routes them to the attempts' inboxes.
//
// Design assumptions:
// - One host for all tasks, started at worker start in the background, so the first task
//   finds it warm (a cold node + wasm compile costs ~0.2-0.3 s; a warm task ~4 ms). Tasks
//   interleave on its threads at their awaits, so a chain of tasks waiting on each other
//   runs on a one-slot worker.
// - The host runs inside the worker's containment tier and cgroup like a task process:
//   under bwrap with a read-only root, no network, a private /tmp and an empty environment
//   but PATH/HOME/TMPDIR/LANG; with the worker's rlimits except the address space (node
//   reserves ~10 GiB of it per WebAssembly memory) and CPU time (it lives across tasks).
//   Each task's memory is bounded by the host itself (a capped wasm memory per task). The
//   cgroup, when the worker manages one, covers the host as a whole: all js tasks together.
// - The host is restarted when it dies; the tasks it ran fail UNAVAILABLE ("js engine
//   exited: ..."), which the coordinator retries. A task that does not answer `cancel`
//   with `done` within cancel_grace (native recursion ignores QuickJS's interrupt) gets the
//   host killed: the watchdog. A host that dies before `ready` is restarted after a
//   backoff (1 s doubling to 30 s); meanwhile tasks fail at once with the reason.

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "worker/execution/stop_token.h"
#include "worker/handlers/js_host_process.h"
#include "worker/process/containment.h"
#include "worker/process/process_runner.h"
#include "worker/process/task_process.h"

namespace rc::worker {

// What reaches one running js task: a message from the host, the host's end, or a wake-up
// (its children progressed; js_calls.h).
struct JsEvent {
  enum class Kind { kMessage, kEngineExited, kWake };
  Kind kind = Kind::kWake;
  nlohmann::json message;  // kMessage: one line from the host for this task
  std::string reason;      // kEngineExited: why (exit status, the host's last stderr)
};

// The mailbox of one running task: the engine's reader thread and gRPC callbacks post,
// the task's handler thread takes.
class JsInbox {
 public:
  void Post(JsEvent event) ABSL_LOCKS_EXCLUDED(mu_);
  // What was posted, oldest first, waiting up to `limit` (real time: a poll interval, not
  // a task's time) for the first. Empty when nothing came.
  std::vector<JsEvent> Take(absl::Duration limit) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::deque<JsEvent> events_ ABSL_GUARDED_BY(mu_);
};

struct JsEngineOptions {
  std::string node;  // absolute path of node (js_engine_dir.h: FindJsNode)
  std::string dir;   // the engine dir, holding host.js (ChooseJsEngineDir)
  int threads = 2;   // engine threads (--threads)
  std::string work_root;  // the host's own directory (HOME, TMPDIR, cwd) is made here
  ResourceLimits limits;  // address_space_bytes and cpu_seconds are not applied
  std::shared_ptr<const Containment> containment;  // nullptr: the process tier's rlimits only
  const Clock* clock = RealClock::Get();  // cancel watchdog, restart backoff
  absl::Duration cancel_grace = absl::Seconds(2);
  absl::Duration ready_timeout = absl::Seconds(60);  // start to `ready` (slow disks, node 18 under load)
  absl::Duration restart_backoff_initial = absl::Seconds(1);
  absl::Duration restart_backoff_max = absl::Seconds(30);
};

class JsEngine {
 public:
  // Starts the host in the background (a supervisor thread, which also reads it); never
  // waits for it.
  explicit JsEngine(JsEngineOptions options);
  // Closes the host's input (it exits at EOF), kills it if it has not within 2 s, joins.
  ~JsEngine();
  JsEngine(const JsEngine&) = delete;
  JsEngine& operator=(const JsEngine&) = delete;

  // Routes the host's messages for `id` to `inbox` from now on, once the host is ready
  // (waits for it while it starts). UNAVAILABLE "js engine is not running: WHY" when it
  // could not be started (it is retried in the background); CANCELLED when `stop` stopped
  // first; ALREADY_EXISTS for an id attached already.
  absl::Status Attach(const std::string& id, std::shared_ptr<JsInbox> inbox, const StopToken& stop)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sends one message to the host. UNAVAILABLE when it is not running or does not read
  // (then it is killed): attached inboxes hear kEngineExited.
  absl::Status Send(const nlohmann::json& message) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops task `id`: sends `cancel` and detaches it. If the host sends no `done` for it
  // within cancel_grace, the host is killed and restarted.
  void Cancel(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Detaches `id` (after its `done`).
  void Detach(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // True once the host is ready, false if `limit` (real time) passes first.
  bool WaitReady(absl::Duration limit) ABSL_LOCKS_EXCLUDED(mu_);
  // The running host's pid (0 when none) and how many hosts were started: for tests.
  int host_pid() const ABSL_LOCKS_EXCLUDED(mu_);
  int starts() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class State { kStarting, kReady, kDown };
  void Supervise();
  // Starts one host; its directory and containment live as long as *dir and *applied.
  absl::StatusOr<std::shared_ptr<HostProcess>> Spawn(int generation, std::unique_ptr<TaskDir>* dir,
                                                     AppliedContainment* applied);
  // Reads one host until it ends; returns why it ended.
  std::string Serve(const std::shared_ptr<HostProcess>& host);
  // One line from the host's stdout.
  void Route(absl::string_view line) ABSL_LOCKS_EXCLUDED(mu_);
  // Kills the running host, saying why (the reason its tasks hear).
  void KillHost(const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);
  void Wake();

  const JsEngineOptions options_;
  int wake_fd_ = -1;  // an eventfd: the supervisor's poll returns
  std::thread supervisor_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kStarting;
  std::string down_reason_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<HostProcess> host_ ABSL_GUARDED_BY(mu_);
  std::string kill_reason_ ABSL_GUARDED_BY(mu_);  // set when the worker killed the host
  int starts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<JsInbox>> inboxes_ ABSL_GUARDED_BY(mu_);
  // Cancelled tasks whose `done` has not come: by id, the moment the watchdog fires.
  absl::flat_hash_map<std::string, absl::Time> cancels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::worker
