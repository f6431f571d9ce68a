#pragma once
// `browser_session` (DESIGN.md "Browser automation"; the browser-task runner's lifecycle):
// one Chromium per attempt, opened on a URL, the attempt running while it lives. This file
// holds the policy, pure: what a payload may ask for, which environment the browser gets,
// and how a session's end becomes the attempt's outcome. The mechanism (starting,
// watching and stopping the browser) is browser_session_handler.cc.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/execution/completion_inbox.h"

namespace rc::worker {

enum class CompleteOn {
  kExit,      // the session succeeds when the browser exits (closed by its user, or by a script)
  kCallback,  // only POST /tasks/ID/complete (ClientService.CompleteTask) ends it well
};

struct SessionRequest {
  std::string url;
  std::string profile;  // a profile of the worker's pool (leased); "": a fresh one, removed after
  CompleteOn complete_on = CompleteOn::kExit;
  std::optional<bool> headless;  // nullopt: headful iff the worker has a display
};

// Longest payload.url accepted: a data: URL goes on Chromium's command line, where one
// argument may hold at most 128 KiB (MAX_ARG_STRLEN).
constexpr size_t kMaxSessionUrlBytes = 64 * 1024;

// OK for an http(s) URL with a host, exactly "about:blank", or a data: URL (schemes
// matched case-insensitively), at most kMaxSessionUrlBytes, without whitespace or control
// characters. INVALID_ARGUMENT naming `field` and why otherwise: other schemes (file:,
// javascript:, chrome:, ...) would read the worker's files or run script outside any page,
// and text without a scheme could be taken by Chromium for a command-line switch. Pure.
absl::Status CheckSessionUrl(absl::string_view url, absl::string_view field);

// The payload {"url", "profile"?, "complete_on"?: "exit"|"callback", "headless"?}.
// INVALID_ARGUMENT naming the field: not a JSON object, a key it does not know, url
// missing or refused by CheckSessionUrl, a profile name CheckProfileName refuses, an
// unknown complete_on, a mistyped value. null counts as absent. Pure.
absl::StatusOr<SessionRequest> ParseSessionRequest(const std::string& payload);

// Whether the browser runs headless: as requested, else headful exactly when the worker
// has an X display. FAILED_PRECONDITION (this worker lacks it; another may have it) for
// headless false on a worker without a display, naming --display. Pure.
absl::StatusOr<bool> ChooseHeadless(std::optional<bool> requested, const std::string& display);

// What the browser's environment holds beyond HostEnvironment(dir): DISPLAY when headful,
// and what lets a program or extension in the browser complete the task by callback.
struct SessionEnvInputs {
  std::string dir;          // HOME: the attempt's directory
  // TMPDIR: where Chromium makes the directory of its SingletonSocket. A Unix socket's
  // path holds at most 107 bytes, so this must be short (at most ~60), which an attempt's
  // directory under the data dir is not: Chromium aborts "Socket path too long" there.
  std::string tmp_dir;
  std::string display;      // "" when headless
  std::string task_id;      // RC_TASK_ID
  std::string callback_url; // RC_CALLBACK_URL ("" = not set: the coordinator serves no HTTP)
  std::string task_token;   // RETIRE_CLUSTER_TOKEN ("" = not set)
};
// The complete environment, "KEY=VALUE", sorted by name. Pure.
std::vector<std::string> SessionEnvironment(const SessionEnvInputs& in);

// How a session ended: the first of these the handler saw (a delivered completion beats
// an exit seen in the same poll: the callback is the explicit word on the outcome, and a
// script that calls back and then closes its browser must not be reported as an exit).
struct SessionEnd {
  std::optional<ExternalCompletion> completion;
  bool exited = false;  // the browser's main process ended by itself
  int exit_code = -1;   // -1 when a signal ended it
  int signal = 0;
  // What the result reports.
  std::string task_id;
  std::string url;
  int pid = 0;
  std::string cdp_url;  // "" when Chromium had not written its DevToolsActivePort yet
};

struct SessionOutcome {
  std::string result = "{}";  // JSON object text
  absl::Status failure;       // OK: SUCCESS; otherwise FAILED with its message
};

// The attempt's outcome (pure):
//   a completion        its status and result as they are; FAILED with its error_message
//                       ("the callback reported failure" when it gave none);
//   an exit before the browser came up (no cdp_url: it never wrote DevToolsActivePort)
//                       FAILED (UNAVAILABLE, retried) in either mode: Chromium could not
//                       start here (missing libraries, no display), not a session's end;
//   an exit, exit mode  SUCCESS {"ended": "exit", "exit_code", "signal"?, "url", "pid", "cdp_url"}
//                       whatever the code (the browser's end is the task's end);
//   an exit, callback   FAILED "the browser exited (code N | signal S) before POST
//                       /tasks/ID/complete", with the same result object.
// Neither (the attempt was stopped): FAILED "the browser was stopped before the session
// ended"; the Executor reports CANCELLED or TIMEOUT from its token instead.
SessionOutcome DecideSessionOutcome(CompleteOn mode, const SessionEnd& end);

}  // namespace rc::worker
