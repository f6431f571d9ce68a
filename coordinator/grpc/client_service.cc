// ClientService on the gRPC callback API: unary calls answer from the core; WatchTask
// streams snapshots through a TaskSink with one write in flight.
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/task_names.h"
#include "coordinator/grpc/grpc_services.h"
#include "coordinator/grpc/refused_calls.h"

namespace rc::coordinator {
namespace {

grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

template <typename T>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, absl::StatusOr<T> r, T* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (r.ok()) *resp = std::move(*r);
  reactor->Finish(ToGrpcStatus(r.status()));
  return reactor;
}

// Streams snapshots of one task until its terminal state. Newer snapshots replace an
// unsent older one (only the latest matters); the terminal one is always sent.
class WatchReactor final : public grpc::ServerWriteReactor<pb::Task> {
 public:
  WatchReactor(Coordinator* core, std::string task_id, const Principal& who)
      : core_(core), task_id_(std::move(task_id)) {
    sink_ = std::make_shared<Sink>(this);
    absl::StatusOr<uint64_t> id = core_->Watch(
        task_id_, sink_, [who](const pb::Task& t) { return Authorize(who, Action::kReadTask, t.owner()); });
    if (id.ok()) {
      watch_id_ = *id;
    } else {
      sink_->Abort(id.status());
    }
  }

  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Abort(absl::CancelledError("watch cancelled by client")); }
  void OnDone() override {
    sink_->Detach();
    if (watch_id_ != 0) core_->Unwatch(task_id_, watch_id_);
    delete this;
  }

 private:
  class Sink final : public TaskSink {
   public:
    explicit Sink(WatchReactor* r) : reactor_(r) {}

    void OnTask(const pb::Task& t) override {
      absl::MutexLock lock(&mu_);
      if (finishing_ || reactor_ == nullptr || t.revision() <= newest_) return;
      newest_ = t.revision();
      pending_ = t;
      PumpLocked();
    }
    void Abort(absl::Status s) override {
      absl::MutexLock lock(&mu_);
      if (finishing_ || reactor_ == nullptr || final_status_.has_value()) return;
      final_status_ = s;
      pending_.reset();
      PumpLocked();
    }
    void WriteDone(bool ok) {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !final_status_.has_value()) final_status_ = absl::CancelledError("watch stream broken");
      PumpLocked();
    }
    void Detach() {
      absl::MutexLock lock(&mu_);
      reactor_ = nullptr;
    }

   private:
    void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (writing_ || finishing_ || reactor_ == nullptr) return;
      if (pending_.has_value() && !sent_terminal_) {
        current_ = std::move(*pending_);
        pending_.reset();
        sent_terminal_ = IsTerminal(current_.status());
        writing_ = true;
        reactor_->StartWrite(&current_);
        return;
      }
      if (sent_terminal_ || final_status_.has_value()) {
        finishing_ = true;
        reactor_->Finish(sent_terminal_ ? grpc::Status::OK : ToGrpcStatus(*final_status_));
      }
    }

    absl::Mutex mu_;
    WatchReactor* reactor_ ABSL_GUARDED_BY(mu_);
    std::optional<pb::Task> pending_ ABSL_GUARDED_BY(mu_);
    pb::Task current_ ABSL_GUARDED_BY(mu_);
    uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool sent_terminal_ ABSL_GUARDED_BY(mu_) = false;
    bool finishing_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  };

  Coordinator* const core_;
  const std::string task_id_;
  std::shared_ptr<Sink> sink_;
  uint64_t watch_id_ = 0;
};

}  // namespace

absl::string_view AuthorizationOf(const grpc::CallbackServerContext& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  return absl::string_view(it->second.data(), it->second.size());
}

bool PeerCertified(const grpc::CallbackServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  return auth != nullptr && auth->IsPeerAuthenticated();
}

absl::StatusOr<Principal> ClientServiceImpl::Caller(grpc::CallbackServerContext* ctx) const {
  // With client tokens only the token counts: skip building the peer string and auth context.
  if (tokens_->has_client_tokens()) return AuthenticateClient(*tokens_, AuthorizationOf(*ctx), "");
  return AuthenticateClient(*tokens_, AuthorizationOf(*ctx), ctx->peer(), PeerCertified(*ctx));
}

// Authenticates the call and checks `action` (no task owner): refuses it on failure.
#define RC_CALLER_OR_REFUSE(who, action)                                              \
  absl::StatusOr<Principal> who = Caller(ctx);                                        \
  if (!who.ok()) return Refuse(ctx, who.status());                                    \
  if (absl::Status allowed = Authorize(*who, action); !allowed.ok()) return Refuse(ctx, allowed)

grpc::ServerUnaryReactor* ClientServiceImpl::Submit(grpc::CallbackServerContext* ctx, const pb::SubmitRequest* req,
                                                    pb::SubmitResponse* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kSubmit);
  auto* reactor = ctx->DefaultReactor();
  core_->Submit(req->spec(), [reactor, resp](absl::StatusOr<SubmitResult> r) {
    if (r.ok()) {
      resp->set_task_id(r->task_id);
      resp->set_status(r->status);
      resp->set_existing(r->existing);
    }
    reactor->Finish(ToGrpcStatus(r.status()));
  }, who->name);
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::SubmitBatch(grpc::CallbackServerContext* ctx,
                                                         const pb::SubmitBatchRequest* req,
                                                         pb::SubmitBatchResponse* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kSubmit);
  auto* reactor = ctx->DefaultReactor();
  if (req->specs_size() == 0 || static_cast<size_t>(req->specs_size()) > kMaxSubmitBatch) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("specs: a batch holds 1..", kMaxSubmitBatch, " tasks, got ", req->specs_size()))));
    return reactor;
  }
  std::vector<pb::TaskSpec> specs(req->specs().begin(), req->specs().end());
  core_->SubmitBatch(std::move(specs), [reactor, resp](std::vector<absl::StatusOr<SubmitResult>> results) {
    for (size_t i = 0; i < results.size(); ++i) {
      pb::SubmitOutcome* out = resp->add_results();
      if (results[i].ok()) {
        out->mutable_accepted()->set_task_id(results[i]->task_id);
        out->mutable_accepted()->set_status(results[i]->status);
        out->mutable_accepted()->set_existing(results[i]->existing);
      } else {
        out->set_error_code(static_cast<int>(results[i].status().code()));
        const bool field = results[i].status().code() == absl::StatusCode::kInvalidArgument;
        out->set_error_message(absl::StrCat("specs[", i, field ? "]." : "]: ", results[i].status().message()));
      }
    }
    reactor->Finish(grpc::Status::OK);
  }, who->name);
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetTask(grpc::CallbackServerContext* ctx, const pb::GetTaskRequest* req,
                                                     pb::Task* resp) {
  absl::StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return Refuse(ctx, who.status());
  absl::StatusOr<pb::Task> task = core_->GetTask(req->task_id());
  if (task.ok()) {
    if (absl::Status allowed = Authorize(*who, Action::kReadTask, task->owner()); !allowed.ok()) {
      return Refuse(ctx, allowed);
    }
  }
  return Answer(ctx, std::move(task), resp);
}

grpc::ServerWriteReactor<pb::Task>* ClientServiceImpl::WatchTask(grpc::CallbackServerContext* ctx,
                                                                 const pb::GetTaskRequest* req) {
  absl::StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return new RefusedWriter<pb::Task>(who.status());
  return new WatchReactor(core_, req->task_id(), *who);  // the core checks the task's owner
}

grpc::ServerUnaryReactor* ClientServiceImpl::CancelTask(grpc::CallbackServerContext* ctx,
                                                        const pb::CancelTaskRequest* req,
                                                        pb::CancelTaskResponse* resp) {
  absl::StatusOr<Principal> who = Caller(ctx);
  if (!who.ok()) return Refuse(ctx, who.status());
  auto* reactor = ctx->DefaultReactor();
  core_->Cancel(
      req->task_id(),
      [reactor, resp](absl::StatusOr<pb::CancelTaskResponse> r) {
        if (r.ok()) *resp = std::move(*r);
        reactor->Finish(ToGrpcStatus(r.status()));
      },
      [who = *who](const pb::Task& t) { return Authorize(who, Action::kCancel, t.owner()); }, who->name);
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::ListTasks(grpc::CallbackServerContext* ctx,
                                                       const pb::ListTasksRequest* req, pb::ListTasksResponse* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kListTasks);
  TaskFilter f;
  if (who->role == Role::kSubmit) f.owner = who->name;  // its own tasks only
  // An enum value this build does not know (a newer client, a typo over raw protobuf)
  // would match no task and answer an empty list; HTTP answers 400 for it too.
  if (!pb::TaskStatus_IsValid(req->status())) {
    return Answer<pb::ListTasksResponse>(
        ctx, absl::InvalidArgumentError(absl::StrCat("status: unknown TaskStatus value ", req->status())), resp);
  }
  f.status = req->status();
  f.task_type = req->task_type();
  f.worker_device_id = req->worker_device_id();
  f.limit = req->limit() == 0 ? 100 : req->limit();
  absl::StatusOr<std::vector<pb::Task>> tasks = core_->ListTasks(f);
  if (!tasks.ok()) return Answer<pb::ListTasksResponse>(ctx, tasks.status(), resp);
  pb::ListTasksResponse out;
  for (pb::Task& t : *tasks) *out.add_tasks() = std::move(t);
  return Answer<pb::ListTasksResponse>(ctx, std::move(out), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::ListWorkers(grpc::CallbackServerContext* ctx,
                                                         const pb::ListWorkersRequest* req,
                                                         pb::ListWorkersResponse* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kReadCluster);
  pb::ListWorkersResponse out;
  for (pb::Worker& w : core_->ListWorkers(req->device_id())) *out.add_workers() = std::move(w);
  if (!req->device_id().empty() && out.workers_size() == 0) {
    return Answer<pb::ListWorkersResponse>(
        ctx, absl::NotFoundError("no worker with device id '" + req->device_id() + "'"), resp);
  }
  return Answer<pb::ListWorkersResponse>(ctx, std::move(out), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetStats(grpc::CallbackServerContext* ctx, const pb::GetStatsRequest* req,
                                                      pb::Stats* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kReadCluster);
  return Answer<pb::Stats>(ctx, core_->Stats(), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::DrainWorker(grpc::CallbackServerContext* ctx,
                                                         const pb::DrainWorkerRequest* req, pb::Worker* resp) {
  RC_CALLER_OR_REFUSE(who, Action::kDrain);
  return Answer<pb::Worker>(ctx, core_->DrainWorker(req->device_id(), !req->undrain()), resp);
}

#undef RC_CALLER_OR_REFUSE

}  // namespace rc::coordinator
