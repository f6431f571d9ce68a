#pragma once
// The `browser` block of python_script, node_task and command payloads (DESIGN.md
// "Browser automation"): `"browser": {"profile": "default", "keep_alive": true,
// "headless": true}` gives the task's process the profile's persistent browser.
//
// What a handler does with it, in order: ParseTaskBrowser early (a bad block is refused
// before anything is built), TaskBrowser::Attach right before running the process (takes
// the profile's lease, waiting while another task holds it; starts the browser; puts
// RC_CDP_URL=http://127.0.0.1:PORT and RC_BROWSER_PROFILE=NAME in the process's
// environment; wires the CDP relay when the sandbox needs it), TaskBrowser::Finish after
// it (stops a browser this task started when keep_alive is false; releases the lease).
//
// Why a relay, and only sometimes: under the bwrap tier without internet_required the
// task has a network namespace of its own with nothing but loopback, so the browser's
// 127.0.0.1:PORT on the host is out of its reach. Then the task's argv runs behind
// retire-cluster-cdp-relay (worker/cdp_relay/relay.h), which listens on 127.0.0.1:PORT
// inside the sandbox (the same number, so the ws:// URLs of /json/version stay right) and
// forwards over a Unix socket in the task dir to a RelayThread in the worker, connected to
// the browser. That endpoint is all the task can reach. With internet_required the sandbox
// shares the host's network (loopback included) and at the `process` tier there is no
// network isolation at all: the task reaches 127.0.0.1:PORT directly, no relay.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/browser/browser_pool.h"
#include "worker/cdp_relay/relay.h"
#include "worker/handler.h"
#include "worker/process/task_process.h"

namespace rc::worker {

struct TaskBrowserRequest {
  std::string profile = "default";
  bool keep_alive = true;  // false: stop the browser after the task, if the task started it
  bool headless = true;    // for a browser started now; a running one is used as it is
};

// payload.browser of `payload` (a JSON object's text): nullopt when absent or null.
// INVALID_ARGUMENT naming payload.browser.KEY for an unknown key or a mistyped value,
// for port/cdp_port (Chromium chooses the port), and for a bad profile name
// (CheckProfileName). Pure.
absl::StatusOr<std::optional<TaskBrowserRequest>> ParseTaskBrowser(const std::string& payload);

// True when a task process cannot reach the host's 127.0.0.1 by itself: the bwrap tier
// without internet_required. Pure.
bool NeedsCdpRelay(absl::string_view containment_tier, bool internet_required);

// `command` behind the relay: [relay, --listen, tcp:127.0.0.1:PORT, --connect,
// unix:SOCKET, --, command...]. Pure.
std::vector<std::string> RelayedArgv(const std::string& relay, int port, const std::string& socket_path,
                                     const std::vector<std::string>& command);

// Where the attempt's relay socket goes: <task_dir>/cdp.sock, or <short_dir>/cdp-<id>.sock
// when that path is too long for a Unix socket. "" when both are. Pure.
std::string CdpSocketPath(const std::string& task_dir, const std::string& short_dir, const std::string& id);

// The relay binary: options.cdp_relay when set, else retire-cluster-cdp-relay beside the
// worker's own executable. FAILED_PRECONDITION naming where it looked when it is not an
// executable file there.
absl::StatusOr<std::string> FindCdpRelay(const ExecutionOptions& options);

// One attempt's hold on its browser. Finish (or destruction) undoes Attach.
class TaskBrowser {
 public:
  // Without a request: an object that does nothing. Otherwise as the header comment says,
  // editing `spec` (environment; argv behind the relay) and `paths` (the relay binary
  // read-only; the socket when it lies outside the task dir) for RunTaskProcess.
  // Errors: FAILED_PRECONDITION when the worker runs no browsers (options.browsers is
  // null) or lacks the relay binary; CANCELLED when the attempt is stopped while waiting
  // for the lease; the pool's Start errors (UNAVAILABLE: Chromium did not come up);
  // UNAVAILABLE when the relay socket cannot be made; NOT_FOUND for a missing program.
  static absl::StatusOr<std::unique_ptr<TaskBrowser>> Attach(const std::optional<TaskBrowserRequest>& request,
                                                             const TaskContext& ctx, const ExecutionOptions& options,
                                                             ProcessSpec* spec, SandboxPaths* paths);
  ~TaskBrowser();
  TaskBrowser(const TaskBrowser&) = delete;
  TaskBrowser& operator=(const TaskBrowser&) = delete;

  // Closes the relay, stops the browser when keep_alive is false and this task started
  // it, releases the lease, and adds "browser": {"profile", "cdp_url", "started",
  // "stopped"} to out->result (when out is given and its result is a JSON object).
  // Does nothing the second time.
  void Finish(HandlerOutput* out);

 private:
  TaskBrowser() = default;
  std::shared_ptr<BrowserPool> pool_;
  std::optional<TaskBrowserRequest> request_;
  std::string task_id_;
  std::optional<ProfileLease> lease_;
  std::unique_ptr<RelayThread> relay_;
  std::string cdp_url_;
  bool started_ = false;  // this task started the browser (it was not running before)
  bool finished_ = false;
};

}  // namespace rc::worker
