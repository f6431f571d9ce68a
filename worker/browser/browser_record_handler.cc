// `browser_record`: runs recorder.js (Playwright's recorder, worker/browser/record) on the
// worker's display and returns the script it generated. See browser_record.h for why the
// recorder runs outside the task sandbox.
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_pool.h"
#include "worker/browser/browser_record.h"
#include "worker/handlers/bundled_dir.h"
#include "worker/handlers/python_sdk.h"
#include "worker/process/process_runner.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

// Time the recorder gets beyond max_seconds to close the browser and print its result
// before the worker kills it.
constexpr absl::Duration kCloseGrace = absl::Seconds(60);

// The last lines of the recorder's stderr, without Chromium's wrapper noise, for errors.
std::string StderrTail(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // Playwright's "<launching> chromium ..." line is the browser's whole command line.
    if (line.empty() || absl::StrContains(line, "unexpected operator") || absl::StartsWith(line, "<launching>")) continue;
    lines.emplace_back(line.substr(0, 400));
  }
  const size_t keep = std::min<size_t>(lines.size(), 5);
  std::vector<std::string> tail(lines.end() - keep, lines.end());
  return absl::StrJoin(tail, " | ");
}

class BrowserRecordHandler final : public Handler {
 public:
  BrowserRecordHandler(ExecutionOptions options, std::string node, std::string recorder_dir, std::string chromium,
                       std::string display)
      : options_(std::move(options)),
        node_(std::move(node)),
        recorder_dir_(std::move(recorder_dir)),
        chromium_(std::move(chromium)),
        display_(std::move(display)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(RecordRequest request, ParseRecordPayload(ctx.payload));
    if (request.profile.has_value()) RETURN_IF_ERROR(CheckProfileName(*request.profile, "payload.profile"));
    ASSIGN_OR_RETURN(TaskDir work, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));

    // A profile (its cookies and logins) is recorded on under the task's lease; its
    // persistent browser, if one runs, is stopped first: two Chromiums cannot share a
    // profile, and no task uses it while the lease is ours (the next use restarts it).
    ProfileLease lease;
    std::string user_data_dir;
    if (request.profile.has_value()) {
      if (options_.browsers == nullptr) {
        return absl::FailedPreconditionError(
            "payload.profile: this worker keeps no browser profiles (it does not allow `browser`); record without "
            "a profile or on a worker started with --allow browser");
      }
      ASSIGN_OR_RETURN(lease, options_.browsers->Lease(*request.profile, ctx.task_id, *ctx.stop));
      ASSIGN_OR_RETURN(BrowserState state, options_.browsers->Status(*request.profile));
      if (state.running) {
        spdlog::info("browser_record {}: stopping profile {}'s browser (pid {}) to record on it", ctx.task_id,
                     *request.profile, state.pid);
        RETURN_IF_ERROR(options_.browsers->Stop(*request.profile, ctx.task_id).status());
      }
      ASSIGN_OR_RETURN(user_data_dir, options_.browsers->ProfileDirForSession(*request.profile));
    }

    ProcessSpec spec;
    spec.argv = {node_, (fs::path(recorder_dir_) / "recorder.js").string()};
    spec.env = TaskEnvironment(options_, work.path(),
                               {{"DISPLAY", display_},
                                // playwright-core never fetches a browser: it drives chromium_.
                                {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"}});
    spec.cwd = work.path();
    spec.stdin_data = RecordJobJson(request, chromium_, work.path(), user_data_dir);
    spec.limits = options_.limits;
    // Chromium reserves tens of GiB of address space (V8's cages) it never uses: an
    // RLIMIT_AS would stop it from starting, so only the other limits apply.
    spec.limits.address_space_bytes = 0;
    spec.output_cap = options_.output_cap;
    spec.deadline = absl::Now() + absl::Seconds(request.max_seconds) + kCloseGrace;
    ASSIGN_OR_RETURN(ProcessResult r, RunProcess(spec, *ctx.stop, ctx.on_process_start));
    if (r.stopped && !r.deadline_passed) return absl::CancelledError("browser_record stopped");
    if (r.deadline_passed) {
      return absl::DeadlineExceededError(absl::StrCat("the recorder did not end within max_seconds (",
                                                      request.max_seconds, ") and ", absl::ToInt64Seconds(kCloseGrace),
                                                      " s more: ", StderrTail(r.stderr)));
    }
    if (r.exit_code != 0) {
      return absl::UnavailableError(absl::StrCat("the recorder failed (",
                                                 r.signal != 0 ? absl::StrCat("signal ", r.signal)
                                                               : absl::StrCat("exit ", r.exit_code),
                                                 "): ", StderrTail(r.stderr)));
    }
    ASSIGN_OR_RETURN(std::string result, RecordResultJson(r.stdout, request.profile));
    HandlerOutput out;
    out.result = std::move(result);
    out.stderr = MarkTruncated(std::move(r.stderr), r.stderr_truncated, options_.output_cap);
    out.usage.set_cpu_seconds(r.cpu_seconds);
    out.usage.set_peak_rss_bytes(r.peak_rss_bytes);
    return out;
  }

 private:
  const ExecutionOptions options_;
  const std::string node_;
  const std::string recorder_dir_;
  const std::string chromium_;
  const std::string display_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> MakeBrowserRecordHandler(const ExecutionOptions& options,
                                                                  const BrowserRecordOptions& record) {
  constexpr char kWhy[] = "--allow browser_record: ";
  if (record.chromium.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(kWhy, "no Chromium (install Debian's chromium or set --chromium)"));
  }
  if (record.display.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kWhy, "no X display (start the worker with --display :N; the recorder shows the browser there)"));
  }
  const std::string node = FindProgram("node", record.search_path);
  if (node.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(kWhy, "no node on ", record.search_path,
                                                      "; install Debian's nodejs (scripts/install-deps.sh does)"));
  }
  absl::StatusOr<std::string> printed = record.node_version(node);
  absl::StatusOr<NodeVersion> version = printed.ok() ? ParseNodeVersion(*printed) : printed.status();
  if (!version.ok() || version->major < kMinNodeMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        kWhy, "needs node >= ", kMinNodeMajor, " (playwright-core 1.61): ", node,
        version.ok() ? absl::StrCat(" is ", absl::StripAsciiWhitespace(*printed)) : absl::StrCat(": ", version.status().message())));
  }
  static const BundledDirRule rule{"the browser recorder",
                                   " (the directory the build's browser_record_host target fills: "
                                   "build/worker/browser/record, or an install's share/retire-cluster/browser-record)",
                                   {{"browser/record", "build tree"}, {"../share/retire-cluster/browser-record", "installed"}}};
  ASSIGN_OR_RETURN(BundledDir dir,
                   ChooseBundledDir(rule, record.recorder_dir, WorkerBinaryPath(), [](const std::string& d) {
                     return MissingFilesOnDisk(d, RequiredRecorderFiles());
                   }));
  if (dir.dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        kWhy, "no recorder: ", dir.how,
        "; build it with `cmake --build build --target browser_record_host` (npm ci of playwright-core)"));
  }
  spdlog::info("browser_record: node {} ({}), recorder {} ({}), chromium {}, display {}", node,
               std::string(absl::StripAsciiWhitespace(*printed)), dir.dir, dir.how, record.chromium, record.display);
  return std::make_unique<BrowserRecordHandler>(options, node, dir.dir, record.chromium, record.display);
}

}  // namespace rc::worker
