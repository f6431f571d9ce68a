// `js`: a JavaScript module run in QuickJS inside the worker's engine host (js_engine.h),
// with only `input`, `context.log` and `context.tasks.execute` (js_calls.h) to reach out.
// Opt-in (--allow js). DESIGN.md "JavaScript tasks"; the wire protocol in I16_COMMON.md.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/handlers/js_calls.h"
#include "worker/handlers/js_engine.h"
#include "worker/handlers/js_engine_dir.h"
#include "worker/handlers/js_protocol.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/python_sdk.h"

namespace rc::worker {
namespace {

using json = nlohmann::json;

// How often a running task looks at its stop token (which cannot wake it).
constexpr absl::Duration kStopPoll = absl::Milliseconds(20);

class JsHandler final : public Handler {
 public:
  JsHandler(ExecutionOptions options, std::unique_ptr<JsEngine> engine)
      : options_(std::move(options)), engine_(std::move(engine)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(JsPayload payload, ParseJsPayload(ctx.payload));
    const std::string id = absl::StrCat(ctx.task_id, "/", ctx.attempt);
    auto inbox = std::make_shared<JsInbox>();
    if (absl::Status s = engine_->Attach(id, inbox, *ctx.stop); !s.ok()) {
      if (ctx.stop->stopped()) return HandlerOutput{};  // the Executor says CANCELLED or TIMEOUT
      return s;
    }
    // The attempt's directory and socket, made at the first context.tasks.execute; the
    // calls (and their Client) end before them.
    std::unique_ptr<TaskDir> dir;
    std::unique_ptr<TaskSocket> socket;
    JsCalls calls(
        id,
        [&]() -> absl::StatusOr<std::string> {
          if (!ctx.open_socket) return std::string();
          ASSIGN_OR_RETURN(TaskDir made, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
          dir = std::make_unique<TaskDir>(std::move(made));
          ASSIGN_OR_RETURN(socket, ctx.open_socket(dir->path()));
          if (socket == nullptr) return std::string();  // no task token: no socket
          return absl::StrCat("unix:", socket->path());
        },
        [inbox] { inbox->Post(JsEvent{JsEvent::Kind::kWake, {}, ""}); });

    const absl::Duration remaining = ctx.stop->deadline() == absl::InfiniteFuture()
                                         ? absl::InfiniteDuration()
                                         : ctx.stop->deadline() - ctx.stop->clock().Now();
    if (absl::Status s = engine_->Send(RunMessage(id, payload, HostTimeoutMs(remaining))); !s.ok()) {
      engine_->Detach(id);
      return absl::UnavailableError(absl::StrCat("js engine exited: ", s.message()));
    }
    HandlerOutput out;
    bool truncated = false;
    while (true) {
      if (ctx.stop->stopped()) {
        // The host answers with `done` (ignored) or is killed by the watchdog.
        engine_->Cancel(id);
        out.stdout = MarkTruncated(std::move(out.stdout), truncated, options_.output_cap);
        return out;
      }
      for (JsEvent& e : inbox->Take(kStopPoll)) {
        if (e.kind == JsEvent::Kind::kEngineExited) {
          return absl::UnavailableError(absl::StrCat("js engine exited: ", e.reason));
        }
        if (e.kind != JsEvent::Kind::kMessage) continue;
        const json& m = e.message;
        const std::string op = m["op"].get<std::string>();  // Route checked it is a string
        if (op == "log") {
          AppendLog(m, &out.stdout, &truncated);
        } else if (op == "call") {
          calls.Start(m);
        } else if (op == "done") {
          engine_->Detach(id);
          JsOutcome done = FromDone(m, payload);
          if (done.load_failure) return absl::InvalidArgumentError(done.failure.message());
          out.result = std::move(done.result);
          out.failure = std::move(done.failure);
          out.stderr = std::move(done.stderr);
          out.stdout = MarkTruncated(std::move(out.stdout), truncated, options_.output_cap);
          return out;
        }
      }
      for (const json& answer : calls.Drain()) {
        // A host that is gone says so through the inbox.
        (void)engine_->Send(answer);
      }
    }
  }

 private:
  // One context.log line into stdout, up to the output cap.
  void AppendLog(const json& m, std::string* out, bool* truncated) const {
    auto line = m.find("line");
    const std::string text = line == m.end() ? "" : line->is_string() ? line->get<std::string>() : line->dump();
    const size_t room = options_.output_cap > out->size() ? options_.output_cap - out->size() : 0;
    const size_t want = text.size() + 1;
    out->append(text, 0, std::min(room, text.size()));
    if (room > text.size()) out->push_back('\n');
    if (want > room) *truncated = true;
  }

  const ExecutionOptions options_;
  const std::unique_ptr<JsEngine> engine_;
};

}  // namespace

JsHandlerOptions JsHandlerOptions::FromConfig(const WorkerConfig& config) {
  JsHandlerOptions o;
  o.engine_dir = config.js_engine_dir;
  const int slots = config.slots > 0 ? config.slots : static_cast<int>(std::thread::hardware_concurrency());
  o.threads = std::clamp(slots, 2, 64);  // the host takes 1..64
  return o;
}

absl::StatusOr<std::unique_ptr<Handler>> MakeJsHandler(const ExecutionOptions& options, const JsHandlerOptions& js) {
  absl::StatusOr<NodeProgram> node = FindJsNode(js.search_path, FindProgram, js.node_version);
  if (!node.ok()) return absl::FailedPreconditionError(absl::StrCat("--allow js: ", node.status().message()));
  ASSIGN_OR_RETURN(JsEngineDir dir, ChooseJsEngineDir(js.engine_dir, WorkerBinaryPath(), MissingEngineFilesOnDisk));
  if (dir.dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--allow js: no JavaScript engine host: ", dir.how,
        "; build it with `cmake --build build --target js_engine` (npm ci into build/worker/js; "
        "scripts/install-deps.sh installs nodejs and npm), or set js_engine_dir"));
  }
  if (options.containment != nullptr && options.containment->WouldExpose(dir.dir)) {
    return absl::FailedPreconditionError(absl::StrCat("js_engine_dir: ", dir.dir, " is (or holds) a path that containment ",
                                                      options.containment->tier(), " hides from tasks"));
  }
  spdlog::info("js tasks: node {} ({}), engine host {} ({}), {} engine threads", node->path, node->version, dir.dir,
               dir.how, js.threads);
  JsEngineOptions e;
  e.node = node->path;
  e.dir = dir.dir;
  e.threads = js.threads;
  e.work_root = options.work_root;
  e.limits = options.limits;
  e.containment = options.containment;
  e.clock = js.clock;
  return std::unique_ptr<Handler>(new JsHandler(options, std::make_unique<JsEngine>(std::move(e))));
}

}  // namespace rc::worker
