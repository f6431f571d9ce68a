#pragma once
// The one interface every task type implements (STYLE.md rule 11). A handler gets the
// payload and a StopToken, returns output or an error; it never decides TIMEOUT or
// CANCELLED itself: the Executor does, from the token. Handlers must return promptly
// once the token is stopped.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "worker/execution/completion_inbox.h"
#include "worker/execution/stop_token.h"
#include "worker/gateway/task_socket.h"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::worker {

namespace pb = ::retire_cluster::v1;

// What a handler may know about the worker running it.
struct WorkerSnapshot {
  const pb::Capabilities* capabilities = nullptr;  // fixed for the worker's lifetime
  int running = 0;
};

struct TaskContext {
  std::string task_id;
  int attempt = 0;
  std::string payload;  // a JSON object (validated by the coordinator)
  const StopToken* stop = nullptr;
  WorkerSnapshot worker;
  // Handlers that start a process call this with its pid (shown while it runs).
  std::function<void(int pid)> on_process_start;
  // Assignment.internet_required: a contained (bwrap) worker gives the task's processes
  // network access only when this is set.
  bool internet_required = false;
  // Opens the attempt's socket to the cluster in its task directory (DESIGN.md
  // "Workflows"); RunContained calls it for every task process. Unset (handler unit
  // tests) or returning nullptr (no task token): the process runs without it.
  std::function<absl::StatusOr<std::unique_ptr<TaskSocket>>(const std::string& task_dir)> open_socket;
  // Completions of this attempt from outside (ClientService.CompleteTask), delivered by
  // the Executor; nullptr in handler unit tests that do not give one.
  const CompletionInbox* completion = nullptr;
  // This attempt's task token (Assignment.task_token; "" when it has none) and the URL
  // its programs may POST their completion to (RC_CALLBACK_URL: the coordinator's
  // /tasks/{id}/complete; "" when the coordinator serves no HTTP). Only handlers that
  // hand them to a program outside the task socket use them (browser_session).
  std::string task_token;
  std::string callback_url;
};

struct HandlerOutput {
  std::string result = "{}";  // JSON text
  std::string stdout;
  std::string stderr;
  int exit_code = 0;
  // Set when the attempt failed but produced output worth keeping (a command that
  // exited non-zero): the task ends FAILED with this message and the output above.
  absl::Status failure;
  pb::ResourceUsage usage;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // An error Status makes the attempt FAILED with its message. The code decides whether
  // the task is retried:
  //   INVALID_ARGUMENT  the payload is refused before anything runs (a missing or
  //                     mistyped field, a path outside the allowed root), naming the
  //                     field. Permanent: every attempt on every worker would be refused
  //                     alike, so the task ends FAILED at once (TaskFinished.permanent).
  //                     Use it only for what the payload alone decides; never for a
  //                     failure that depends on this worker, the network or the moment.
  //   anything else     retried as usual (up to max_retries, maybe on another worker):
  //                     FAILED_PRECONDITION for what this worker lacks (node not
  //                     installed, no task root), NOT_FOUND for files this worker's
  //                     root does not hold (another worker's may), UNAVAILABLE for the
  //                     network, ...
  // HandlerOutput::failure (the task ran and failed) is never permanent, whatever its code.
  virtual absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) = 0;
  // True for handlers that finish in microseconds without blocking or touching the
  // system (echo): the Executor runs them on the thread that received the assignment,
  // sparing two thread hand-offs per task.
  virtual bool Instant() const { return false; }
};

// True for a Run() error that makes the failure permanent (see Handler::Run).
inline bool IsPermanentRefusal(const absl::Status& s) { return s.code() == absl::StatusCode::kInvalidArgument; }

// Task type -> handler. Built once at worker start, read-only afterwards.
class HandlerRegistry {
 public:
  void Add(std::string type, std::unique_ptr<Handler> handler);
  Handler* Find(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<Handler>> handlers_;
};

// The built-in safe handlers: echo, sleep, system_info.
void AddBuiltinHandlers(HandlerRegistry* registry);

}  // namespace rc::worker
