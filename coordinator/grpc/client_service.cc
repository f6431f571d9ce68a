// ClientService on the gRPC callback API: unary calls answer from the client API; WatchTask
// and SubmitAndWatch stream snapshots through a TaskSink with one write in flight.
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

// Ends a unary call with `s` (OK once the response is filled).
grpc::ServerUnaryReactor* End(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

pb::SubmitResponse ToSubmitResponse(const SubmitResult& r) {
  pb::SubmitResponse out;
  out.set_task_id(r.task_id);
  out.set_status(r.status);
  out.set_existing(r.existing);
  return out;
}

template <typename T>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, absl::StatusOr<T> r, T* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (r.ok()) *resp = std::move(*r);
  reactor->Finish(ToGrpcStatus(r.status()));
  return reactor;
}

// Streams snapshots of one task until its terminal state. Newer snapshots replace an
// unsent older one (only the latest matters); the terminal one is always sent. The watch
// starts at once (WatchTask) or once a submit is accepted (SubmitAndWatch).
class WatchReactor final : public grpc::ServerWriteReactor<pb::Task> {
 public:
  explicit WatchReactor(ClientApi* api) : api_(api), sink_(std::make_shared<Sink>(this)) {}

  void Watch(const Principal& who, const std::string& task_id) { Sink::Watch(sink_, api_, who, task_id); }
  // A refused submit ends the call with its error; an accepted one is watched.
  void SubmitThenWatch(const Principal& who, const pb::TaskSpec& spec) {
    api_->Submit(who, spec, [api = api_, who, sink = sink_](absl::StatusOr<SubmitResult> r) {
      if (!r.ok()) return sink->Abort(r.status());
      Sink::Watch(sink, api, who, r->task_id);
    });
  }

  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Abort(absl::CancelledError("watch cancelled by client")); }
  void OnDone() override {
    sink_->Detach();
    delete this;
  }

 private:
  class Sink final : public TaskSink {
   public:
    explicit Sink(WatchReactor* r) : reactor_(r) {}

    // Registers `sink` as the watch of `task_id`; a call already over removes it again.
    static void Watch(const std::shared_ptr<Sink>& sink, ClientApi* api, const Principal& who,
                      const std::string& task_id) {
      absl::StatusOr<uint64_t> id = api->Watch(who, task_id, sink);
      if (!id.ok()) return sink->Abort(id.status());
      {
        absl::MutexLock lock(&sink->mu_);
        if (sink->reactor_ != nullptr) {
          sink->watch_ = Registered{api, task_id, *id};
          return;
        }
      }
      api->Unwatch(task_id, *id);
    }
    void OnTask(pb::Task t) override {
      absl::MutexLock lock(&mu_);
      if (finishing_ || reactor_ == nullptr || t.revision() <= newest_) return;
      newest_ = t.revision();
      pending_ = std::move(t);
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
    // The call is over: nothing more is written, and the watch (if any) is removed.
    void Detach() {
      std::optional<Registered> watch;
      {
        absl::MutexLock lock(&mu_);
        reactor_ = nullptr;
        watch.swap(watch_);
      }
      if (watch.has_value()) watch->api->Unwatch(watch->task_id, watch->id);
    }

   private:
    struct Registered {
      ClientApi* api;
      std::string task_id;
      uint64_t id;
    };

    void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (writing_ || finishing_ || reactor_ == nullptr) return;
      if (pending_.has_value() && !sent_terminal_) {
        current_ = std::move(*pending_);
        pending_.reset();
        sent_terminal_ = IsTerminal(current_.status());
        if (sent_terminal_) {
          // The terminal snapshot and the call's end leave together: the client learns
          // the outcome and the status in one flight, with nothing to cancel.
          finishing_ = true;
          reactor_->StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
          return;
        }
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
    std::optional<Registered> watch_ ABSL_GUARDED_BY(mu_);
    std::optional<pb::Task> pending_ ABSL_GUARDED_BY(mu_);
    pb::Task current_ ABSL_GUARDED_BY(mu_);
    uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool sent_terminal_ ABSL_GUARDED_BY(mu_) = false;
    bool finishing_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  };

  ClientApi* const api_;
  const std::shared_ptr<Sink> sink_;
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

absl::StatusOr<Principal> ClientServiceImpl::Caller(grpc::CallbackServerContext* ctx, ClientOp op) const {
  return api_->Admit(op, AuthorizationOf(*ctx), [ctx] { return Peer{ctx->peer(), PeerCertified(*ctx)}; });
}

// Admits the caller to `op` or ends the call with the refusal.
#define RC_CALLER_OR_REFUSE(who, op)               \
  absl::StatusOr<Principal> who = Caller(ctx, op); \
  if (!who.ok()) return End(ctx, who.status())

grpc::ServerUnaryReactor* ClientServiceImpl::Submit(grpc::CallbackServerContext* ctx, const pb::SubmitRequest* req,
                                                    pb::SubmitResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kSubmit);
  auto* reactor = ctx->DefaultReactor();
  api_->Submit(*who, req->spec(), [reactor, resp](absl::StatusOr<SubmitResult> r) {
    if (r.ok()) *resp = ToSubmitResponse(*r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::SubmitBatch(grpc::CallbackServerContext* ctx,
                                                         const pb::SubmitBatchRequest* req,
                                                         pb::SubmitBatchResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kSubmit);
  auto* reactor = ctx->DefaultReactor();
  std::vector<absl::StatusOr<pb::TaskSpec>> specs(req->specs().begin(), req->specs().end());
  api_->SubmitBatch(*who, "specs", std::move(specs),
                    [reactor, resp](absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> results) {
                      if (!results.ok()) return reactor->Finish(ToGrpcStatus(results.status()));
                      for (const absl::StatusOr<SubmitResult>& r : *results) {
                        pb::SubmitOutcome* out = resp->add_results();
                        if (r.ok()) {
                          *out->mutable_accepted() = ToSubmitResponse(*r);
                        } else {
                          out->set_error_code(static_cast<int>(r.status().code()));
                          out->set_error_message(std::string(r.status().message()));
                        }
                      }
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetTask(grpc::CallbackServerContext* ctx, const pb::GetTaskRequest* req,
                                                     pb::Task* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kGetTask);
  return Answer(ctx, api_->GetTask(*who, req->task_id()), resp);
}

grpc::ServerWriteReactor<pb::Task>* ClientServiceImpl::WatchTask(grpc::CallbackServerContext* ctx,
                                                                 const pb::GetTaskRequest* req) {
  absl::StatusOr<Principal> who = Caller(ctx, ClientOp::kWatchTask);
  if (!who.ok()) return new RefusedWriter<pb::Task>(who.status());
  auto* reactor = new WatchReactor(api_);
  reactor->Watch(*who, req->task_id());
  return reactor;
}

grpc::ServerWriteReactor<pb::Task>* ClientServiceImpl::SubmitAndWatch(grpc::CallbackServerContext* ctx,
                                                                      const pb::SubmitRequest* req) {
  absl::StatusOr<Principal> who = Caller(ctx, ClientOp::kSubmit);
  if (!who.ok()) return new RefusedWriter<pb::Task>(who.status());
  auto* reactor = new WatchReactor(api_);
  reactor->SubmitThenWatch(*who, req->spec());
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::CancelTask(grpc::CallbackServerContext* ctx,
                                                        const pb::CancelTaskRequest* req,
                                                        pb::CancelTaskResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kCancelTask);
  auto* reactor = ctx->DefaultReactor();
  api_->Cancel(*who, req->task_id(), [reactor, resp](absl::StatusOr<pb::CancelTaskResponse> r) {
    if (r.ok()) *resp = std::move(*r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClientServiceImpl::ListTasks(grpc::CallbackServerContext* ctx,
                                                       const pb::ListTasksRequest* req, pb::ListTasksResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kListTasks);
  TaskListQuery q;
  q.status = req->status();
  q.task_type = req->task_type();
  q.worker_device_id = req->worker_device_id();
  q.parent_task_id = req->parent_task_id();
  if (req->limit() != 0) q.limit = req->limit();  // proto3: 0 is "not given"
  absl::StatusOr<std::vector<pb::Task>> tasks = api_->ListTasks(*who, q);
  if (!tasks.ok()) return End(ctx, tasks.status());
  for (pb::Task& t : *tasks) *resp->add_tasks() = std::move(t);
  return End(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClientServiceImpl::ListWorkers(grpc::CallbackServerContext* ctx,
                                                         const pb::ListWorkersRequest* req,
                                                         pb::ListWorkersResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kListWorkers);
  absl::StatusOr<std::vector<pb::Worker>> workers = api_->ListWorkers(*who, req->device_id());
  if (!workers.ok()) return End(ctx, workers.status());
  for (pb::Worker& w : *workers) *resp->add_workers() = std::move(w);
  return End(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetStats(grpc::CallbackServerContext* ctx, const pb::GetStatsRequest* req,
                                                      pb::Stats* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kGetStats);
  return Answer(ctx, api_->Stats(*who), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::DrainWorker(grpc::CallbackServerContext* ctx,
                                                         const pb::DrainWorkerRequest* req, pb::Worker* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kDrainWorker);
  return Answer(ctx, api_->DrainWorker(*who, req->device_id(), !req->undrain()), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::PublishJsTask(grpc::CallbackServerContext* ctx,
                                                           const pb::PublishJsTaskRequest* req,
                                                           pb::PublishJsTaskResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kPublishJsTask);
  return Answer(ctx, api_->PublishJsTask(*who, *req), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::ListJsTasks(grpc::CallbackServerContext* ctx,
                                                         const pb::ListJsTasksRequest* req,
                                                         pb::ListJsTasksResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kReadJsTasks);
  absl::StatusOr<std::vector<pb::JsTask>> tasks = api_->ListJsTasks(*who);
  if (!tasks.ok()) return End(ctx, tasks.status());
  for (pb::JsTask& t : *tasks) *resp->add_tasks() = std::move(t);
  return End(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClientServiceImpl::GetJsTask(grpc::CallbackServerContext* ctx,
                                                       const pb::GetJsTaskRequest* req, pb::JsTask* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kReadJsTasks);
  return Answer(ctx, api_->GetJsTask(*who, req->name(), req->version()), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::RemoveJsTask(grpc::CallbackServerContext* ctx,
                                                          const pb::RemoveJsTaskRequest* req,
                                                          pb::RemoveJsTaskResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kPublishJsTask);
  return Answer(ctx, api_->RemoveJsTask(*who, req->name(), req->version()), resp);
}

grpc::ServerUnaryReactor* ClientServiceImpl::CompleteTask(grpc::CallbackServerContext* ctx,
                                                          const pb::CompleteTaskRequest* req,
                                                          pb::CompleteTaskResponse* resp) {
  RC_CALLER_OR_REFUSE(who, ClientOp::kCompleteTask);
  return Answer(ctx, api_->CompleteTask(*who, *req), resp);
}

#undef RC_CALLER_OR_REFUSE

}  // namespace rc::coordinator
