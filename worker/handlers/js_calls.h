#pragma once
// context.tasks.execute of a running js task: each `call` from the engine host becomes a
// child task submitted through the attempt's own socket (worker/gateway: the gateway
// speaks with the task token, so the child is this task's child and max_task_depth /
// max_children_per_task apply), waited on, and answered with a `call_result`.
//
// Design assumptions:
// - The C++ SDK does the talking: SubmitAsync batches the submits of a Promise.all fan-out
//   and WaitAsync waits for all children on one WaitTasks stream.
// - While that stream is open the gateway counts the attempt as waiting (its slot is
//   lent). The SDK keeps it open after the last wait ends, so the Client is closed as soon
//   as no call is outstanding: a task computing between calls is never counted as waiting.
// - Everything but the gRPC callbacks runs on the handler's thread (Start, Drain, the
//   Client's end); callbacks only record progress and wake that thread.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "nlohmann/json.hpp"
#include "retire_cluster/v1/task.pb.h"

namespace rc::worker {

namespace pb = ::retire_cluster::v1;

// The child a `call` message asks for. `target` is a published name (the child is
// {"task_type":"js","payload":{"name":target,"input":input}}) or {"task_type", "payload"?}
// (for a js child `input` becomes payload.input unless the payload has one; other types
// take no input besides {}: their payload is used as given). `options` may
// hold timeout_seconds, max_retries, priority ("low".."urgent") and, for js children,
// memory_mb. INVALID_ARGUMENT naming the field ("target.task_type: ...",
// "options.priority: ...", "options.colour: unknown option ...").
absl::StatusOr<pb::TaskSpec> ChildSpec(const nlohmann::json& call);

// The call_result for child `task` that ended: ok with its result (parsed) when it
// succeeded; else ok:false, error "child task ID (TYPE) ended STATUS: ERROR", task_id, status.
nlohmann::json ChildOutcome(const std::string& id, int64_t call, const pb::Task& task);
// The call_result of a call that could not be made (refused submit, bad target, ...).
nlohmann::json CallRefused(const std::string& id, int64_t call, const std::string& why);

class JsCalls {
 public:
  // The attempt's gRPC target ("unix:<socket path>"), opened on first use; an error or
  // "" when this worker cannot submit children (then every call is refused, saying why).
  using Connect = std::function<absl::StatusOr<std::string>()>;
  // `id`: the attempt ("<task id>/<attempt>"); `wake`: tells the handler's thread to Drain.
  JsCalls(std::string id, Connect connect, std::function<void()> wake);
  // Closes the Client: waits still open end (their children go on).
  ~JsCalls();
  JsCalls(const JsCalls&) = delete;
  JsCalls& operator=(const JsCalls&) = delete;

  // A `call` message: submits the child, or refuses the call (see Drain).
  void Start(const nlohmann::json& call);
  // The call_result messages of calls that ended since the last Drain; starts waiting for
  // children whose submit was answered. Closes the Client when no call is outstanding.
  std::vector<nlohmann::json> Drain();
  // Calls submitted or waited on, not yet answered.
  int outstanding() const { return static_cast<int>(calls_.size()); }
  // True while a Client (and maybe its WaitTasks stream) is open: for tests.
  bool connected() const { return client_ != nullptr; }

 private:
  // What the gRPC callbacks report, for Drain.
  struct Progress {
    int64_t call = 0;
    bool submitted = false;  // else ended
    absl::StatusOr<pb::SubmitResponse> submit = absl::UnknownError("unset");
    absl::StatusOr<pb::Task> task = absl::UnknownError("unset");
  };
  struct Reports {
    absl::Mutex mu;
    std::vector<Progress> progress ABSL_GUARDED_BY(mu);
  };
  struct Call {
    std::string task_type;
    std::string task_id;  // once submitted
  };
  // The Client, made on first use; nullptr with *why set when there can be none.
  client::Client* ClientFor(std::string* why);

  const std::string id_;
  const Connect connect_;
  const std::function<void()> wake_;
  const std::shared_ptr<Reports> reports_ = std::make_shared<Reports>();
  bool connect_tried_ = false;
  std::string target_;   // "" when there is none
  std::string no_target_;  // why, then
  std::unique_ptr<client::Client> client_;
  std::map<int64_t, Call> calls_;
  std::vector<nlohmann::json> answered_;  // refused at Start, for the next Drain
};

}  // namespace rc::worker
