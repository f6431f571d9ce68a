#pragma once
// The C++ client SDK: what applications link against (target rc_client) to submit
// tasks and read results. One Client is thread-safe and may be shared; it holds one
// gRPC channel. Every method returns a Status with the coordinator's code and message;
// UNAVAILABLE says the coordinator could not be reached and names its address (and,
// for TLS without a client certificate, that the coordinator may require one).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/async.h"
#include "grpcpp/security/credentials.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"

namespace rc::client {

namespace pb = ::retire_cluster::v1;

struct ClientOptions {
  std::string target = "127.0.0.1:8080";  // HOST:PORT of retire-cluster-main
  absl::Duration rpc_timeout = absl::Seconds(10);  // bound on each unary call
  // TLS: rc::MakeChannelCredentials (common/tls.h). nullptr = plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Bearer token sent with every call ("" sends none): the coordinator's client tokens.
  std::string token;
  // True when `credentials` are TLS without a client certificate. A coordinator that
  // requires one (mTLS) ends the handshake, which gRPC reports only as UNAVAILABLE
  // "Socket closed"; the error then says a client certificate may be what is missing.
  bool tls_without_client_cert = false;
};

// Options for a program that may run as a task (DESIGN.md "Workflows"): the target from
// $RETIRE_CLUSTER_COORDINATOR (HOST:PORT, or unix:PATH, the task's own socket; default
// 127.0.0.1:8080) and the token from $RETIRE_CLUSTER_TOKEN. Plaintext: a unix: socket is
// the worker's, which forwards calls on its own connection; for TLS to a HOST:PORT set
// `credentials` afterwards. A task submitted with a task's token is that task's child.
ClientOptions ClientOptionsFromEnvironment();
// $RETIRE_CLUSTER_TASK_ID: the task this process runs as, "" outside a task.
std::string CurrentTaskId();

class Client {
 public:
  explicit Client(ClientOptions options);
  // Waits still open get CANCELLED; then waits for the answers of submits on the wire.
  // Async calls made from callbacks meanwhile fail at once with CANCELLED.
  ~Client();

  // Queues a task; returns its id and status once the coordinator accepted it.
  // INVALID_ARGUMENT names a bad field.
  absl::StatusOr<pb::SubmitResponse> Submit(const pb::TaskSpec& spec);
  // Many tasks in one call and one store commit: one answer per spec, in order (a
  // refused spec does not refuse the others; its error names "specs[i].field"). The call
  // itself fails for an empty batch, more than 10000 specs, or no coordinator.
  absl::StatusOr<std::vector<absl::StatusOr<pb::SubmitResponse>>> SubmitBatch(const std::vector<pb::TaskSpec>& specs);

  // ---- Asynchronous calls, for high rates. They return at once; `done` runs later on
  // a gRPC thread and must not block. Neither starts a thread. ----

  // Submits that arrive while earlier batches are on the wire travel together in the
  // next SubmitBatch call, so a busy client makes few large calls, and a lone submit on
  // an idle client goes out at once. Queued submits are not bounded: callers that
  // produce faster than the coordinator stores should cap what they have outstanding.
  void SubmitAsync(pb::TaskSpec spec, internal::SubmitDone done);
  // Runs `done` with the task once it reaches a terminal state (NOT_FOUND for an
  // unknown id). All waits of one Client share one WaitTasks stream; if it breaks
  // (coordinator restart, network), the waits then open get UNAVAILABLE and may be
  // made again, and later waits open a new stream.
  void WaitAsync(const std::string& task_id, internal::WaitDone done);

  // NOT_FOUND for an unknown id.
  absl::StatusOr<pb::Task> Get(const std::string& task_id);
  // Blocks until the task reaches a terminal state and returns it, following the
  // coordinator's WatchTask stream (no polling). `on_update` sees every snapshot.
  // DEADLINE_EXCEEDED after `timeout` (absl::InfiniteDuration() waits for ever);
  // a stream broken by a coordinator restart is resumed within the same deadline.
  absl::StatusOr<pb::Task> Wait(const std::string& task_id, absl::Duration timeout = absl::InfiniteDuration(),
                                const std::function<void(const pb::Task&)>& on_update = nullptr);
  // Submit and Wait in one call (SubmitAndWatch), a round trip less than the two: the
  // submit's errors as Submit returns them, else the task once terminal. `on_update` sees
  // the task as accepted first (it names the id), then its changes; `timeout` bounds the
  // whole call, and a stream broken after the task was accepted is resumed as Wait does.
  absl::StatusOr<pb::Task> SubmitAndWait(const pb::TaskSpec& spec, absl::Duration timeout = absl::InfiniteDuration(),
                                         const std::function<void(const pb::Task&)>& on_update = nullptr);
  absl::StatusOr<pb::CancelTaskResponse> Cancel(const std::string& task_id);
  absl::StatusOr<std::vector<pb::Task>> List(const pb::ListTasksRequest& request);
  // All workers, or the one with `device_id` (NOT_FOUND if unknown).
  absl::StatusOr<std::vector<pb::Worker>> Workers(const std::string& device_id = "");
  absl::StatusOr<pb::Stats> Stats();
  // Admin only: the worker takes no new tasks (`drain`), or takes them again.
  absl::StatusOr<pb::Worker> Drain(const std::string& device_id, bool drain = true);

  // ---- Published JavaScript tasks (DESIGN.md "JavaScript tasks"). ----

  // Stores `code` (a module whose first JSDoc block holds `@task NAME`) as a new version
  // of `name` ("" = the @task name); code equal to the latest version's stores nothing
  // (`unchanged`). INVALID_ARGUMENT naming the problem (no @task, a bad name, code too
  // large); PERMISSION_DENIED naming the owner when the name is another submitter's.
  absl::StatusOr<pb::PublishJsTaskResponse> PublishJsTask(const std::string& code, const std::string& name = "");
  // The latest version of every published name, by name, without code.
  absl::StatusOr<std::vector<pb::JsTask>> ListJsTasks();
  // One version (0 = the latest) with its code; NOT_FOUND if unknown.
  absl::StatusOr<pb::JsTask> GetJsTask(const std::string& name, int version = 0);
  // Removes one version, or every version (0); owner or admin only. NOT_FOUND if unknown.
  absl::StatusOr<pb::RemoveJsTaskResponse> RemoveJsTask(const std::string& name, int version = 0);
  // Submits a `js` task that runs the published `name` (`version` 0: the latest when the
  // coordinator accepts the task) on `input_json` (any JSON text; "" = {}). `options`
  // gives the rest of the task (priority, requirements, metadata, after, ...); its payload,
  // when set, is a JSON object of js payload options such as {"memory_mb": 128}.
  // INVALID_ARGUMENT "input: not valid JSON", or naming options.task_type or a field of
  // options.payload the call sets itself; the coordinator's NOT_FOUND
  // "payload.name: no published task 'x'" for an unknown name or version.
  absl::StatusOr<pb::SubmitResponse> RunJsTask(const std::string& name, const std::string& input_json,
                                               const pb::TaskSpec& options = {}, int version = 0);

  // ---- Completion from outside (DESIGN.md "Browser automation"). ----

  // Completes the running attempt of `task_id` with `status` (SUCCESS or FAILED), `result`
  // (a JSON object's text; "" = {}) and, with FAILED, `error_message`. Only that task's own
  // token may (options.token = its RETIRE_CLUSTER_TOKEN, as ClientOptionsFromEnvironment
  // reads it inside the task): PERMISSION_DENIED for another task's or a client token;
  // FAILED_PRECONDITION when the task is not running; INVALID_ARGUMENT naming a bad field.
  // Accepted means handed to the worker: the task ends when the worker reports it (Wait).
  absl::StatusOr<pb::CompleteTaskResponse> CompleteTask(const std::string& task_id,
                                                        pb::TaskStatus status = pb::TASK_STATUS_SUCCESS,
                                                        const std::string& result = "",
                                                        const std::string& error_message = "");

  const std::string& target() const { return options_.target; }

 private:
  void Prepare(grpc::ClientContext* ctx) const;
  std::string Authorization() const;  // "Bearer TOKEN", or "" without a token
  absl::Status Convert(const grpc::Status& s) const;
  internal::ConvertFn Converter() const;

  const ClientOptions options_;
  std::unique_ptr<pb::ClientService::Stub> stub_;
  std::shared_ptr<internal::SubmitBatcher> batcher_;
  absl::Mutex wait_mu_;
  bool closing_ ABSL_GUARDED_BY(wait_mu_) = false;  // the destructor runs: async calls fail at once
  std::shared_ptr<internal::ResultStream> results_ ABSL_GUARDED_BY(wait_mu_);
  // Streams that ended (replaced by results_) may still be running callbacks.
  std::vector<std::shared_ptr<internal::ResultStream>> ended_ ABSL_GUARDED_BY(wait_mu_);
};

}  // namespace rc::client
