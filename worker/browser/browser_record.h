#pragma once
// `browser_record` (DESIGN.md "Browser automation"): Playwright's recorder on the worker's
// X display, returning the generated script as result.code.
//
// Design assumption: the recorder is the node program worker/browser/record/recorder.js
// with playwright-core pinned by its package-lock.json (built beside the worker binary by
// the browser_record_host target), driving the system Chromium; it is found once at
// start-up, like the js engine host. The recorder and its browsers run as the worker's own
// children in the attempt's process group (killed on cancel and deadline), outside the
// task sandbox, as the persistent browsers do: a recording needs the display and the
// sites the user records, and runs no task code (the payload is data: a URL, a language).
//
// The parsing and checking here is pure; browser_record_handler.cc runs the process.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/handler.h"
#include "worker/handlers/js_engine_dir.h"
#include "worker/process/task_process.h"

namespace rc::worker {

// The languages the recorder writes, as `playwright codegen --target` names them.
const std::vector<std::string>& RecordTargets();

// The longest recording a payload may ask for (max_seconds), and the one it gets when it
// asks for none: a forgotten recording ends instead of holding a slot and a profile.
constexpr double kMaxRecordSeconds = 4 * 3600;
constexpr double kDefaultRecordSeconds = 3600;

struct RecordRequest {
  std::string url;
  std::string target = "python";
  std::optional<std::string> profile;  // checked by the handler (CheckProfileName)
  double max_seconds = kDefaultRecordSeconds;
};

// The payload {"url", "target"?, "profile"?, "max_seconds"?}. INVALID_ARGUMENT naming the
// field: not a JSON object, an unknown key, url missing or not http(s)://, a target not in
// RecordTargets(), max_seconds not a number in (0, kMaxRecordSeconds], profile not a string.
absl::StatusOr<RecordRequest> ParseRecordPayload(const std::string& payload);

// The job recorder.js reads on stdin. `user_data_dir` "" gives the recording a fresh
// browser profile in `work_dir`. Pure.
std::string RecordJobJson(const RecordRequest& request, const std::string& chromium, const std::string& work_dir,
                          const std::string& user_data_dir);

// The task's result from what recorder.js printed on stdout (its last non-empty line:
// {"code", "target", "url", "ended", "seconds"}), with "profile" added when the recording
// used one. INTERNAL quoting the text when it is not that object. Pure.
absl::StatusOr<std::string> RecordResultJson(absl::string_view recorder_stdout, const std::optional<std::string>& profile);

// The files that make a directory the recorder: the script and the pinned package
// (installed by the build's `npm ci`).
const std::vector<std::string>& RequiredRecorderFiles();

// How browser_record finds what it needs (from WorkerConfig and the disk).
struct BrowserRecordOptions {
  std::string chromium;  // FindChromium's answer ("" = none)
  std::string display;   // WorkerConfig.display (":99"; "" = none)
  // Where recorder.js and its node_modules are (nullopt: beside the worker binary,
  // <binary dir>/browser/record in a build tree, ../share/retire-cluster/browser-record
  // in an install; "": none).
  std::optional<std::string> recorder_dir;
  std::string search_path = "/usr/local/bin:/usr/bin:/bin";  // where node is looked for
  NodeVersionProbe node_version = NodeVersionOnDisk;
};

// FAILED_PRECONDITION naming what is missing and how to get it: no Chromium, no display
// (--display :N), no node >= 18, no recorder directory (build target
// browser_record_host). The worker then does not offer browser_record (it logs why).
absl::StatusOr<std::unique_ptr<Handler>> MakeBrowserRecordHandler(const ExecutionOptions& options,
                                                                  const BrowserRecordOptions& record);

}  // namespace rc::worker
