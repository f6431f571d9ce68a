#pragma once
// The browser task types (DESIGN.md "Browser automation"), each opt-in (--allow) and
// registered only on a worker with Chromium (worker/handlers/opt_in_handlers.cc): without
// it they are not advertised, so such tasks wait unschedulable rather than fail.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/browser/browser_pool.h"
#include "worker/browser/browser_record.h"
#include "worker/handler.h"
#include "worker/process/task_process.h"

namespace rc::worker {

// A `browser` task's payload: {"operation": "start"|"stop"|"status", "profile": "default",
// "headless": true}.
struct BrowserRequest {
  std::string operation;
  std::string profile = "default";
  bool headless = true;
};

// INVALID_ARGUMENT naming the field: a payload that is not an object, a missing or unknown
// operation, a bad profile name (CheckProfileName), a non-boolean headless, a CDP port
// (payload.port / payload.cdp_port: Chromium chooses it) or any other key. Pure.
absl::StatusOr<BrowserRequest> ParseBrowserRequest(const std::string& payload);

// `browser` (H1): start/stop/status of the pool's persistent browser of a profile; the
// result is BrowserStateJson. Errors: the payload's (above, permanent); FAILED_PRECONDITION
// for a stop of a profile a task holds (naming it) or a headful start without a display;
// UNAVAILABLE when Chromium does not come up.
std::unique_ptr<Handler> MakeBrowserHandler(std::shared_ptr<BrowserPool> pool);

// `browser_session` (H5, worker/browser/browser_session_handler.cc): a Chromium of its own
// per attempt, done on its exit or on the attempt's callback. Registered by H5 in
// AddOptInHandlers (opt_in_handlers.cc, "browser_session" below `browser`).
std::unique_ptr<Handler> MakeBrowserSessionHandler(std::shared_ptr<BrowserPool> pool,
                                                   const ExecutionOptions& options);

// `browser_record` (worker/browser/browser_record.h: MakeBrowserRecordHandler and its
// BrowserRecordOptions): Playwright's recorder on the worker's display. Besides Chromium it
// needs node >= 18, the recorder the build installs and a display; without them it is not
// registered (AddOptInHandlers logs why).

}  // namespace rc::worker
