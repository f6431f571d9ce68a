// `node_task`: runs DIR/index.js with node, where DIR is payload.task_path resolved
// inside the worker's --node-task-root (symlinks included; nothing may escape it).
// Opt-in (--allow node_task).
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/browser/task_browser.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/payload.h"
#include "worker/process/task_process.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

class NodeTaskHandler final : public Handler {
 public:
  NodeTaskHandler(std::string root, ExecutionOptions options) : root_(std::move(root)), options_(std::move(options)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> task_path, p.String("task_path"));
    if (!task_path.has_value() || task_path->empty()) {
      return absl::InvalidArgumentError("payload.task_path: required, a directory under the worker's node task root");
    }
    ASSIGN_OR_RETURN(std::vector<std::string> args, p.StringArray("args"));
    ASSIGN_OR_RETURN(std::optional<double> timeout, p.Seconds("timeout_secs"));
    ASSIGN_OR_RETURN(std::optional<TaskBrowserRequest> browser_request, ParseTaskBrowser(ctx.payload));
    ASSIGN_OR_RETURN(std::string dir, Resolve(*task_path));
    const std::string node = FindProgram("node", "/usr/local/bin:/usr/bin:/bin");
    if (node.empty()) return absl::FailedPreconditionError("node is not installed on this worker (no node on PATH)");

    ASSIGN_OR_RETURN(TaskDir work, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    ProcessSpec spec;
    spec.argv = {node, (fs::path(dir) / "index.js").string()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = TaskEnvironment(options_, work.path(), {{"NODE_TASK_DIR", dir}});
    spec.cwd = work.path();
    // The task's code is read-only; only its attempt directory is writable.
    SandboxPaths paths{work.path(), {dir}};
    ASSIGN_OR_RETURN(auto browser, TaskBrowser::Attach(browser_request, ctx, options_, &spec, &paths));
    ASSIGN_OR_RETURN(HandlerOutput out, RunTaskProcess(std::move(spec), paths, ctx, options_, timeout, "timeout_secs"));
    browser->Finish(&out);
    return out;
  }

 private:
  // The task directory, checked: inside the root (after resolving symlinks), with
  // package.json and index.js.
  absl::StatusOr<std::string> Resolve(const std::string& task_path) const {
    if (root_.empty()) {
      return absl::FailedPreconditionError("this worker has no node task root (--node-task-root DIR)");
    }
    std::error_code ec;
    const fs::path root = fs::canonical(root_, ec);
    if (ec) return absl::FailedPreconditionError(absl::StrCat("node task root ", root_, ": ", ec.message()));
    const fs::path wanted = fs::path(task_path).is_absolute() ? fs::path(task_path) : root / task_path;
    const fs::path dir = fs::weakly_canonical(wanted, ec);
    const std::string inside = root.string() + "/";
    if (ec || !absl::StartsWith(dir.string() + "/", inside) || dir == root) {
      const std::string why =
          absl::StrCat("payload.task_path: '", task_path, "' is outside the node task root ", root.string());
      // A relative path climbing out with "..", or naming the root itself, is outside on
      // every worker: the payload alone decides, so it fails at once (INVALID_ARGUMENT,
      // handler.h). An absolute path, or one a symlink leads out, depends on this
      // worker's root: FAILED_PRECONDITION, retried, maybe on another worker.
      const fs::path relative = fs::path(task_path).lexically_normal();
      const bool escapes_anywhere =
          !fs::path(task_path).is_absolute() &&
          (relative.empty() || relative == "." || relative == "./" || *relative.begin() == "..");
      if (escapes_anywhere) return absl::InvalidArgumentError(why);
      return absl::FailedPreconditionError(why);
    }
    if (!fs::is_directory(dir, ec)) {
      return absl::NotFoundError(absl::StrCat("payload.task_path: no directory ", dir.string()));
    }
    for (const char* file : {"package.json", "index.js"}) {
      if (!fs::is_regular_file(dir / file, ec)) {
        return absl::NotFoundError(absl::StrCat("payload.task_path: ", dir.string(), " has no ", file));
      }
    }
    return dir.string();
  }

  const std::string root_;
  const ExecutionOptions options_;
};

}  // namespace

std::unique_ptr<Handler> MakeNodeTaskHandler(const std::string& root, const ExecutionOptions& options) {
  return std::make_unique<NodeTaskHandler>(root, options);
}

}  // namespace rc::worker
