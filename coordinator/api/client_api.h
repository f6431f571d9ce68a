#pragma once
// The one client API (DESIGN.md "Commands", "HTTP bridge"): every client operation of the
// gRPC ClientService and of the HTTP bridge passes through ClientApi, so both authenticate,
// authorize, default, limit, validate and word their errors alike. Transport neutral:
// absl::Status and protos in and out; the front-ends only translate their wire format to
// these calls and a Status to their codes.
//
// Every operation takes the Principal that Admit returned and checks it again itself, so
// no call reaches the core unauthorized whichever way a front-end is written. Checks on
// one task (read, cancel, watch) are handed to the core as a TaskAccess: the core asks it
// under its lock with the task it holds.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth.h"
#include "common/histogram.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/js_tasks.h"
#include "retire_cluster/v1/client_service.pb.h"

namespace rc::coordinator {

// The client operations, one per row of the authorization table (client_api.cc, kRules).
enum class ClientOp {
  kSubmit,       // Submit, SubmitBatch
  kGetTask,      // GetTask
  kWatchTask,    // Watch, WatchAll: streams, waits and long polls
  kCancelTask,   // Cancel
  kListTasks,    // ListTasks (the submit role sees only its own tasks)
  kListWorkers,  // ListWorkers
  kGetStats,     // Stats
  kMetrics,      // Metrics
  kDrainWorker,  // DrainWorker (drain and undrain)
  kPublishJsTask,  // PublishJsTask, RemoveJsTask (a name's owner or admin; no task token)
  kReadJsTasks,    // ListJsTasks, GetJsTask
  kCompleteTask,   // CompleteTask: only the task token of that very task (no client role)
};

// What a front-end can tell about the caller's connection. Asked for only without client
// tokens (with tokens only the token counts).
struct Peer {
  std::string address;     // "127.0.0.1", "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", ...
  bool certified = false;  // presented a client certificate the server verified (mTLS)
};

// ListTasks' question, as the caller asked it (validated by ListTasks).
struct TaskListQuery {
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;  // UNSPECIFIED: any
  std::string task_type;                                // "": any
  std::string worker_device_id;                         // "": any
  std::optional<int64_t> limit;                         // nullopt: kDefaultListLimit
  // "": any; else only the direct children of this task. A task token must give one of
  // its own subtree (itself or a descendant).
  std::string parent_task_id;
};

// What /metrics shows; the histograms belong to the core (which outlives the API).
struct ClusterMetrics {
  pb::Stats stats;
  std::vector<pb::Worker> workers;
  std::map<std::string, std::map<std::string, int64_t>> counts_by_type;
  const Histogram* dispatch_latency = nullptr;
  const Histogram* end_to_end_latency = nullptr;
};

class ClientApi {
 public:
  // Limits and defaults, the same on every transport.
  static constexpr size_t kMaxBatchTasks = 10000;  // SubmitBatch: 1..10000 specs
  static constexpr int64_t kMaxListLimit = 10000;  // ListTasks: limit 1..10000
  static constexpr int64_t kDefaultListLimit = 100;
  static constexpr double kDefaultWaitSeconds = 30;  // a long poll's timeout
  static constexpr double kMaxWaitSeconds = 300;

  using SubmitDone = std::function<void(absl::StatusOr<SubmitResult>)>;
  // The whole batch refused (UNAUTHENTICATED/PERMISSION_DENIED, a bad size), or one answer
  // per entry in order.
  using BatchDone = std::function<void(absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>>)>;
  using CancelDone = std::function<void(absl::StatusOr<pb::CancelTaskResponse>)>;

  // `core` and `tokens` outlive the API; `tokens` nullptr = no client tokens configured
  // (only loopback and certified peers are served, as admin). `js_tasks` (loaded) outlives
  // the API; nullptr: published tasks are kept in memory by the API itself.
  ClientApi(Coordinator* core, const TokenTable* tokens, JsTaskRegistry* js_tasks = nullptr);

  // Who is calling, and whether it may call `op` at all: UNAUTHENTICATED without a valid
  // token (or, without client tokens, from a remote uncertified peer), PERMISSION_DENIED
  // naming the role when the role may never call `op`. `peer` runs only when no client
  // tokens are configured. A task token ("rct1.", DESIGN.md "Workflows") is checked by
  // the core whatever client tokens are configured and from any peer (a worker forwards
  // its tasks' calls with it): the caller is role submit, named as the task's owner, with
  // `task` set; an ended attempt's token is UNAUTHENTICATED.
  absl::StatusOr<Principal> Admit(ClientOp op, absl::string_view authorization,
                                  absl::FunctionRef<Peer()> peer) const;

  // Submits one task owned by `who` (a child of the caller's task for a task token);
  // `done` runs once the task is durable (the core's
  // errors: INVALID_ARGUMENT naming a field, RESOURCE_EXHAUSTED naming the per-token cap,
  // UNAVAILABLE).
  void Submit(const Principal& who, pb::TaskSpec spec, SubmitDone done);
  // Submits `specs` in one commit. `field` is the request's name for the list ("specs" over
  // gRPC, "tasks" over HTTP): errors name it. An entry already refused by the front-end
  // (its JSON did not parse) stays refused in its place. INVALID_ARGUMENT
  // "<field>: a batch holds 1..10000 tasks, got N" for an empty or larger batch; each
  // entry's error is prefixed "<field>[i]." (INVALID_ARGUMENT: a field of it) or
  // "<field>[i]: " (any other).
  void SubmitBatch(const Principal& who, absl::string_view field, std::vector<absl::StatusOr<pb::TaskSpec>> specs,
                   BatchDone done);
  // The batch size rule alone, for a front-end that can refuse before parsing entries.
  static absl::Status CheckBatchSize(absl::string_view field, size_t n);

  // NOT_FOUND "no task with id '...'"; PERMISSION_DENIED for another submitter's task.
  absl::StatusOr<pb::Task> GetTask(const Principal& who, const std::string& task_id) const;
  // Cancels the task; the task's error message records "cancelled by <who.name>".
  void Cancel(const Principal& who, const std::string& task_id, CancelDone done);
  // Newest first. INVALID_ARGUMENT "status: unknown TaskStatus value N",
  // "limit: must be 1..10000, got N" or naming a malformed parent_task_id. A task token
  // without a parent_task_id of its subtree: PERMISSION_DENIED.
  absl::StatusOr<std::vector<pb::Task>> ListTasks(const Principal& who, const TaskListQuery& query) const;

  // The core's Watch/WatchAll with the read check of `who` on each task.
  absl::StatusOr<uint64_t> Watch(const Principal& who, const std::string& task_id, std::shared_ptr<TaskSink> sink);
  std::vector<absl::StatusOr<uint64_t>> WatchAll(const Principal& who, const std::vector<std::string>& task_ids,
                                                 std::shared_ptr<TaskSink> sink);
  void Unwatch(const std::string& task_id, uint64_t watch_id);
  // A long poll's timeout: kDefaultWaitSeconds when not given, INVALID_ARGUMENT
  // "timeout: expected seconds in (0, 300]" outside it (NaN too: a front-end passes NaN for
  // text that is no number).
  static absl::StatusOr<double> WaitSeconds(std::optional<double> requested);

  // All workers, or the one with `device_id` (NOT_FOUND "no worker with device id '...'").
  absl::StatusOr<std::vector<pb::Worker>> ListWorkers(const Principal& who, const std::string& device_id) const;
  // Whether an online worker (the one with `device_id` when not "") that takes new tasks
  // offers `task_type`: lets a front-end refuse at once what no worker could run. Admitted
  // as a submit, and answers only yes or no, so the submit role learns nothing else of the
  // workers.
  absl::StatusOr<bool> OffersTaskType(const Principal& who, absl::string_view task_type,
                                      const std::string& device_id) const;
  // `drain` false lifts a drain. NOT_FOUND for an unknown device.
  absl::StatusOr<pb::Worker> DrainWorker(const Principal& who, const std::string& device_id, bool drain);
  absl::StatusOr<pb::Stats> Stats(const Principal& who) const;
  absl::StatusOr<ClusterMetrics> Metrics(const Principal& who) const;

  // Published JavaScript tasks (DESIGN.md "JavaScript tasks"; client_service.proto says
  // each call's errors). Implemented in js_task_api.cc.
  absl::StatusOr<pb::PublishJsTaskResponse> PublishJsTask(const Principal& who, const pb::PublishJsTaskRequest& request);
  absl::StatusOr<std::vector<pb::JsTask>> ListJsTasks(const Principal& who) const;
  // version 0: the latest.
  absl::StatusOr<pb::JsTask> GetJsTask(const Principal& who, const std::string& name, int version) const;
  // version 0: every version.
  absl::StatusOr<pb::RemoveJsTaskResponse> RemoveJsTask(const Principal& who, const std::string& name, int version);

  // Completion from outside (DESIGN.md "Browser automation"; completion_api.cc): hands
  // the request to the core for the caller's own running attempt. PERMISSION_DENIED for
  // any caller but a task token (AllowOp) and for a task token of another task, naming
  // why; INVALID_ARGUMENT naming task_id, status (only SUCCESS or FAILED), result (a JSON
  // object, "" = {}, at most kMaxCompletionResultBytes) or `error_field` (the error
  // message: only with FAILED; `error_field` is the request's name for it, "error_message"
  // over gRPC, "error" over HTTP); the core's FAILED_PRECONDITION (not running, another
  // attempt) and UNAVAILABLE (its worker disconnected).
  static constexpr size_t kMaxCompletionResultBytes = size_t{1} << 20;
  static constexpr size_t kMaxCompletionErrorBytes = size_t{64} << 10;
  absl::StatusOr<pb::CompleteTaskResponse> CompleteTask(const Principal& who, const pb::CompleteTaskRequest& request,
                                                        absl::string_view error_field = "error_message");

 private:
  Coordinator* const core_;
  const TokenTable no_tokens_;
  const TokenTable* const tokens_;  // never null (&no_tokens_ when none were given)
  std::unique_ptr<JsTaskStore> own_js_store_;  // when no registry was given
  std::unique_ptr<JsTaskRegistry> own_js_tasks_;
  JsTaskRegistry* js_tasks_;  // never null
};

// The authorization table's answer for `op` before any task is known: OK, or
// PERMISSION_DENIED naming the role. Per-task operations pass here for every role and are
// decided on the task (TaskAccessFor).
absl::Status AllowOp(const Principal& who, ClientOp op);
// kCompleteTask's row: only a task token (PERMISSION_DENIED naming the caller's role
// otherwise). Which task it may complete is decided with the request (CompleteTask).
absl::Status AllowCompletion(const Principal& who);
// The check the core asks on one task for a per-task `op` (read, watch, cancel). For a
// task caller the task must also be in its subtree.
TaskAccess TaskAccessFor(const Principal& who, ClientOp op);
// Whether `t` is the task `task_id` or one of its descendants (from `t` alone).
bool InSubtreeOf(const pb::Task& t, absl::string_view task_id);
// The Submitter of a submit by `who`: a task caller's tasks become children of its task.
Submitter SubmitterFor(const Principal& who);

}  // namespace rc::coordinator
