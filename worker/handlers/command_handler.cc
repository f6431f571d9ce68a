// `command`: a shell string or an argv, in a private directory, through the process
// runner. payload.env holds the task's own variables: refused as a whole when one name
// is not the task's to set (worker/handlers/task_env.h), applied inside the sandbox only.
// Opt-in (--allow command).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/browser/task_browser.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/payload.h"
#include "worker/handlers/task_env.h"
#include "worker/process/task_process.h"

namespace rc::worker {
namespace {

// `rel` inside `root`: relative, no "..". INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> Inside(const std::string& root, const std::string& rel, const char* field) {
  std::filesystem::path p(rel);
  if (p.is_absolute()) return absl::InvalidArgumentError(absl::StrCat("payload.", field, ": must be relative to the task directory"));
  for (const auto& part : p) {
    if (part == "..") return absl::InvalidArgumentError(absl::StrCat("payload.", field, ": must not contain '..'"));
  }
  return (std::filesystem::path(root) / p).lexically_normal().string();
}

class CommandHandler final : public Handler {
 public:
  explicit CommandHandler(ExecutionOptions options) : options_(std::move(options)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> command, p.String("command"));
    ASSIGN_OR_RETURN(std::vector<std::string> argv, p.StringArray("argv"));
    if (command.has_value() == !argv.empty()) {
      return absl::InvalidArgumentError("payload: give exactly one of command (a shell string) or argv (an array)");
    }
    if (command.has_value()) argv = {"/bin/sh", "-c", *command};
    ASSIGN_OR_RETURN(auto env, p.StringMap("env"));
    RETURN_IF_ERROR(CheckTaskEnv(env, "payload.env"));
    ASSIGN_OR_RETURN(std::optional<std::string> cwd, p.String("cwd"));
    ASSIGN_OR_RETURN(std::optional<std::string> stdin_data, p.String("stdin"));
    ASSIGN_OR_RETURN(std::optional<double> timeout, p.Seconds("timeout"));
    ASSIGN_OR_RETURN(std::optional<TaskBrowserRequest> browser_request, ParseTaskBrowser(ctx.payload));

    ASSIGN_OR_RETURN(TaskDir dir, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = TaskEnvironment(options_, dir.path(), env);
    spec.cwd = dir.path();
    if (cwd.has_value() && !cwd->empty()) {
      ASSIGN_OR_RETURN(spec.cwd, Inside(dir.path(), *cwd, "cwd"));
      std::error_code ec;
      std::filesystem::create_directories(spec.cwd, ec);
    }
    spec.stdin_data = stdin_data.value_or("");
    SandboxPaths paths{dir.path(), {}};
    ASSIGN_OR_RETURN(auto browser, TaskBrowser::Attach(browser_request, ctx, options_, &spec, &paths));
    ASSIGN_OR_RETURN(HandlerOutput out, RunTaskProcess(std::move(spec), paths, ctx, options_, timeout, "timeout"));
    browser->Finish(&out);
    return out;
  }

 private:
  const ExecutionOptions options_;
};

}  // namespace

std::unique_ptr<Handler> MakeCommandHandler(const ExecutionOptions& options) {
  return std::make_unique<CommandHandler>(options);
}

}  // namespace rc::worker
