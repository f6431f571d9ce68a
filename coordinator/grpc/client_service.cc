// ClientService on the gRPC async API (async_call.h): unary calls answer from the client
// API; WatchTask and SubmitAndWatch stream snapshots through a TaskSink with one write in
// flight. WaitTasks is in wait_call.cc.
#include <algorithm>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/task_names.h"
#include "coordinator/grpc/grpc_services.h"

namespace rc::coordinator {
namespace {

using Async = pb::ClientService::AsyncService;

pb::SubmitResponse ToSubmitResponse(const SubmitResult& r) {
  pb::SubmitResponse out;
  out.set_task_id(r.task_id);
  out.set_status(r.status);
  out.set_existing(r.existing);
  return out;
}

// Where a snapshot stream's sink writes: the call, while it lasts (WatchSink::Detach).
class SnapshotWriter {
 public:
  virtual void Write(const pb::Task* t) = 0;
  virtual void WriteAndFinish(const pb::Task* t) = 0;  // the last one, with OK
  virtual void End(const grpc::Status& s) = 0;

 protected:
  ~SnapshotWriter() = default;
};

// Streams snapshots of one task until its terminal state. Newer snapshots replace an
// unsent older one (only the latest matters); the terminal one is always sent. The watch
// starts at once (WatchTask) or once a submit is accepted (SubmitAndWatch).
class WatchSink final : public TaskSink {
 public:
  explicit WatchSink(SnapshotWriter* w) : writer_(w) {}

  // Registers `sink` as the watch of `task_id`; a call already over removes it again.
  static void Watch(const std::shared_ptr<WatchSink>& sink, ClientApi* api, const Principal& who,
                    const std::string& task_id) {
    absl::StatusOr<uint64_t> id = api->Watch(who, task_id, sink);
    if (!id.ok()) return sink->Abort(id.status());
    {
      absl::MutexLock lock(&sink->mu_);
      if (sink->writer_ != nullptr) {
        sink->watch_ = Registered{api, task_id, *id};
        return;
      }
    }
    api->Unwatch(task_id, *id);
  }
  void OnTask(pb::Task t) override {
    absl::MutexLock lock(&mu_);
    if (finishing_ || writer_ == nullptr || t.revision() <= newest_) return;
    newest_ = t.revision();
    pending_ = std::move(t);
    PumpLocked();
  }
  void Abort(absl::Status s) override {
    absl::MutexLock lock(&mu_);
    if (finishing_ || writer_ == nullptr || final_status_.has_value()) return;
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
      writer_ = nullptr;
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
    if (writing_ || finishing_ || writer_ == nullptr) return;
    if (pending_.has_value() && !sent_terminal_) {
      current_ = std::move(*pending_);
      pending_.reset();
      sent_terminal_ = IsTerminal(current_.status());
      if (sent_terminal_) {
        // The terminal snapshot and the call's end leave together: the client learns
        // the outcome and the status in one flight, with nothing to cancel.
        finishing_ = true;
        writer_->WriteAndFinish(&current_);
        return;
      }
      writing_ = true;
      writer_->Write(&current_);
      return;
    }
    if (sent_terminal_ || final_status_.has_value()) {
      finishing_ = true;
      writer_->End(sent_terminal_ ? grpc::Status::OK : ToGrpcStatus(*final_status_));
    }
  }

  absl::Mutex mu_;
  SnapshotWriter* writer_ ABSL_GUARDED_BY(mu_);
  std::optional<Registered> watch_ ABSL_GUARDED_BY(mu_);
  std::optional<pb::Task> pending_ ABSL_GUARDED_BY(mu_);
  pb::Task current_ ABSL_GUARDED_BY(mu_);
  uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_terminal_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
};

// A unary method: `handle` answers through `answer` (any thread, once).
template <typename Req, typename Resp>
class UnaryCall final : public AsyncUnary<Req, Resp> {
 public:
  using Answer = std::function<void(absl::StatusOr<Resp>)>;
  struct Method {
    ClientServiceImpl* service;
    void (*request)(Async*, grpc::ServerContext*, Req*, grpc::ServerAsyncResponseWriter<Resp>*,
                    grpc::ServerCompletionQueue*, void*);
    ClientOp op;
    void (*handle)(ClientApi*, const Principal&, const Req&, Answer);
    // Whether `handle` may wait on the store (runs on BlockingCalls then); null: never.
    bool (*blocks)(const Principal&, const Req&) = nullptr;
  };
  UnaryCall(CallQueue* queue, const Method* m) : AsyncUnary<Req, Resp>(queue), m_(m) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    m_->request(m_->service, &this->ctx_, &this->request_, &this->responder_, cq, tag);
  }
  AsyncCall* Another() const override { return new UnaryCall(this->queue(), m_); }
  void OnStart() override {
    absl::StatusOr<Principal> who = m_->service->Caller(this->ctx_, m_->op);
    if (!who.ok()) return this->Finish(ToGrpcStatus(who.status()));
    this->Retain();  // released with the answer
    const bool blocks = m_->blocks != nullptr && m_->blocks(*who, this->request_);
    auto handle = [this, who = *std::move(who)] {
      m_->handle(m_->service->api(), who, this->request_, [this](absl::StatusOr<Resp> r) {
        if (r.ok()) this->response_ = *std::move(r);
        this->Finish(ToGrpcStatus(r.status()));
        this->Release();
      });
    };
    if (blocks) {
      m_->service->blocking()->Run(std::move(handle));
    } else {
      handle();
    }
  }

  const Method* const m_;
};

// WatchTask (watched at once) and SubmitAndWatch (watched once the submit is accepted).
template <typename Req>
class WatchCall final : public AsyncWriter<Req, pb::Task>, private SnapshotWriter {
 public:
  struct Method {
    ClientServiceImpl* service;
    void (*request)(Async*, grpc::ServerContext*, Req*, grpc::ServerAsyncWriter<pb::Task>*,
                    grpc::ServerCompletionQueue*, void*);
    ClientOp op;
    void (*start)(ClientApi*, const Principal&, const Req&, const std::shared_ptr<WatchSink>&);
    // Whether `start` may wait on the store (runs on BlockingCalls then).
    bool (*blocks)(const Principal&, const Req&);
  };
  WatchCall(CallQueue* queue, const Method* m)
      : AsyncWriter<Req, pb::Task>(queue),
        m_(m),
        sink_(std::make_shared<WatchSink>(static_cast<SnapshotWriter*>(this))) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    m_->request(m_->service, &this->ctx_, &this->request_, &this->stream_, cq, tag);
  }
  AsyncCall* Another() const override { return new WatchCall(this->queue(), m_); }
  void OnStart() override {
    absl::StatusOr<Principal> who = m_->service->Caller(this->ctx_, m_->op);
    if (!who.ok()) return sink_->Abort(who.status());
    if (!m_->blocks(*who, this->request_)) return m_->start(m_->service->api(), *who, this->request_, sink_);
    this->Retain();  // request_ is read on the other thread
    m_->service->blocking()->Run([this, who = *std::move(who)] {
      m_->start(m_->service->api(), who, this->request_, sink_);
      this->Release();
    });
  }
  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Abort(absl::CancelledError("watch cancelled by client")); }
  void OnDone() override { sink_->Detach(); }

  // SnapshotWriter
  void Write(const pb::Task* t) override { this->StartWrite(t); }
  void WriteAndFinish(const pb::Task* t) override { this->StartWriteAndFinish(t, grpc::Status::OK); }
  void End(const grpc::Status& s) override { this->Finish(s); }

  const Method* const m_;
  const std::shared_ptr<WatchSink> sink_;
};

// Whether a submit of `spec` by `who` may read the store before it is recorded: an
// idempotency key, dependencies or a parent (a task token) are looked up there when the
// tasks they name are not in RAM.
bool SubmitMayRead(const Principal& who, const pb::TaskSpec& spec) {
  return who.task.has_value() || !spec.idempotency_key().empty() || spec.after_size() > 0;
}

// For the methods that read the store (listings, tasks no longer in RAM) or write it
// (published JavaScript), and the rare ones beside them.
template <typename Req>
bool Always(const Principal&, const Req&) {
  return true;
}

// Keeps `m` with the service and listens for its first call.
template <typename Call>
void Serve(CallQueue* queue, std::vector<std::shared_ptr<const void>>* methods, typename Call::Method m) {
  auto kept = std::make_shared<const typename Call::Method>(m);
  methods->push_back(kept);
  (new Call(queue, kept.get()))->Listen();
}

}  // namespace

absl::string_view AuthorizationOf(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  return absl::string_view(it->second.data(), it->second.size());
}

bool PeerCertified(const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  return auth != nullptr && auth->IsPeerAuthenticated();
}

absl::StatusOr<Principal> ClientServiceImpl::Caller(const grpc::ServerContextBase& ctx, ClientOp op) const {
  return api_->Admit(op, AuthorizationOf(ctx), [&ctx] { return Peer{ctx.peer(), PeerCertified(ctx)}; });
}

// gRPC's Request<Method> for `method`, as the call classes take it.
#define RC_REQUEST(method)                                                                           \
  [](Async* s, grpc::ServerContext* c, auto* r, auto* w, grpc::ServerCompletionQueue* cq, void* t) { \
    s->Request##method(c, r, w, cq, cq, t);                                                          \
  }

void ClientServiceImpl::Listen(CallQueue* q) {
  using SubmitCall = UnaryCall<pb::SubmitRequest, pb::SubmitResponse>;
  Serve<SubmitCall>(
      q, &methods_,
      {this, RC_REQUEST(Submit), ClientOp::kSubmit,
       [](ClientApi* api, const Principal& who, const pb::SubmitRequest& req, SubmitCall::Answer answer) {
         api->Submit(who, req.spec(), [answer = std::move(answer)](absl::StatusOr<SubmitResult> r) {
           if (!r.ok()) return answer(r.status());
           answer(ToSubmitResponse(*r));
         });
       },
       [](const Principal& who, const pb::SubmitRequest& req) { return SubmitMayRead(who, req.spec()); }});
  using BatchCall = UnaryCall<pb::SubmitBatchRequest, pb::SubmitBatchResponse>;
  Serve<BatchCall>(
      q, &methods_,
      {this, RC_REQUEST(SubmitBatch), ClientOp::kSubmit,
       [](ClientApi* api, const Principal& who, const pb::SubmitBatchRequest& req, BatchCall::Answer answer) {
         std::vector<absl::StatusOr<pb::TaskSpec>> specs(req.specs().begin(), req.specs().end());
         api->SubmitBatch(
             who, "specs", std::move(specs),
             [answer = std::move(answer)](absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> results) {
               if (!results.ok()) return answer(results.status());
               pb::SubmitBatchResponse resp;
               for (const absl::StatusOr<SubmitResult>& r : *results) {
                 pb::SubmitOutcome* out = resp.add_results();
                 if (r.ok()) {
                   *out->mutable_accepted() = ToSubmitResponse(*r);
                 } else {
                   out->set_error_code(static_cast<int>(r.status().code()));
                   out->set_error_message(std::string(r.status().message()));
                 }
               }
               answer(std::move(resp));
             });
       },
       [](const Principal& who, const pb::SubmitBatchRequest& req) {
         return std::any_of(req.specs().begin(), req.specs().end(),
                            [&](const pb::TaskSpec& spec) { return SubmitMayRead(who, spec); });
       }});
  using GetCall = UnaryCall<pb::GetTaskRequest, pb::Task>;
  Serve<GetCall>(q, &methods_,
                 {this, RC_REQUEST(GetTask), ClientOp::kGetTask,
                  [](ClientApi* api, const Principal& who, const pb::GetTaskRequest& req, GetCall::Answer answer) {
                    answer(api->GetTask(who, req.task_id()));
                  },
                  Always<pb::GetTaskRequest>});
  using CancelCall = UnaryCall<pb::CancelTaskRequest, pb::CancelTaskResponse>;
  Serve<CancelCall>(q, &methods_,
                    {this, RC_REQUEST(CancelTask), ClientOp::kCancelTask,
                     [](ClientApi* api, const Principal& who, const pb::CancelTaskRequest& req,
                        CancelCall::Answer answer) { api->Cancel(who, req.task_id(), std::move(answer)); },
                     Always<pb::CancelTaskRequest>});
  using ListCall = UnaryCall<pb::ListTasksRequest, pb::ListTasksResponse>;
  Serve<ListCall>(q, &methods_,
                  {this, RC_REQUEST(ListTasks), ClientOp::kListTasks,
                   [](ClientApi* api, const Principal& who, const pb::ListTasksRequest& req, ListCall::Answer answer) {
                     TaskListQuery query;
                     query.status = req.status();
                     query.task_type = req.task_type();
                     query.worker_device_id = req.worker_device_id();
                     query.parent_task_id = req.parent_task_id();
                     if (req.limit() != 0) query.limit = req.limit();  // proto3: 0 is "not given"
                     absl::StatusOr<std::vector<pb::Task>> tasks = api->ListTasks(who, query);
                     if (!tasks.ok()) return answer(tasks.status());
                     pb::ListTasksResponse resp;
                     for (pb::Task& t : *tasks) *resp.add_tasks() = std::move(t);
                     answer(std::move(resp));
                   },
                   Always<pb::ListTasksRequest>});
  using WorkersCall = UnaryCall<pb::ListWorkersRequest, pb::ListWorkersResponse>;
  Serve<WorkersCall>(
      q, &methods_,
      {this, RC_REQUEST(ListWorkers), ClientOp::kListWorkers,
       [](ClientApi* api, const Principal& who, const pb::ListWorkersRequest& req, WorkersCall::Answer answer) {
         absl::StatusOr<std::vector<pb::Worker>> workers = api->ListWorkers(who, req.device_id());
         if (!workers.ok()) return answer(workers.status());
         pb::ListWorkersResponse resp;
         for (pb::Worker& w : *workers) *resp.add_workers() = std::move(w);
         answer(std::move(resp));
       },
       Always<pb::ListWorkersRequest>});
  using StatsCall = UnaryCall<pb::GetStatsRequest, pb::Stats>;
  Serve<StatsCall>(q, &methods_,
                   {this, RC_REQUEST(GetStats), ClientOp::kGetStats,
                    [](ClientApi* api, const Principal& who, const pb::GetStatsRequest&, StatsCall::Answer answer) {
                      answer(api->Stats(who));
                    },
                    Always<pb::GetStatsRequest>});
  using DrainCall = UnaryCall<pb::DrainWorkerRequest, pb::Worker>;
  Serve<DrainCall>(q, &methods_,
                   {this, RC_REQUEST(DrainWorker), ClientOp::kDrainWorker,
                    [](ClientApi* api, const Principal& who, const pb::DrainWorkerRequest& req,
                       DrainCall::Answer answer) { answer(api->DrainWorker(who, req.device_id(), !req.undrain())); },
                    Always<pb::DrainWorkerRequest>});
  using PublishCall = UnaryCall<pb::PublishJsTaskRequest, pb::PublishJsTaskResponse>;
  Serve<PublishCall>(q, &methods_,
                     {this, RC_REQUEST(PublishJsTask), ClientOp::kPublishJsTask,
                      [](ClientApi* api, const Principal& who, const pb::PublishJsTaskRequest& req,
                         PublishCall::Answer answer) { answer(api->PublishJsTask(who, req)); },
                      Always<pb::PublishJsTaskRequest>});
  using JsListCall = UnaryCall<pb::ListJsTasksRequest, pb::ListJsTasksResponse>;
  Serve<JsListCall>(
      q, &methods_,
      {this, RC_REQUEST(ListJsTasks), ClientOp::kReadJsTasks,
       [](ClientApi* api, const Principal& who, const pb::ListJsTasksRequest&, JsListCall::Answer answer) {
         absl::StatusOr<std::vector<pb::JsTask>> tasks = api->ListJsTasks(who);
         if (!tasks.ok()) return answer(tasks.status());
         pb::ListJsTasksResponse resp;
         for (pb::JsTask& t : *tasks) *resp.add_tasks() = std::move(t);
         answer(std::move(resp));
       },
       Always<pb::ListJsTasksRequest>});
  using JsGetCall = UnaryCall<pb::GetJsTaskRequest, pb::JsTask>;
  Serve<JsGetCall>(q, &methods_,
                   {this, RC_REQUEST(GetJsTask), ClientOp::kReadJsTasks,
                    [](ClientApi* api, const Principal& who, const pb::GetJsTaskRequest& req,
                       JsGetCall::Answer answer) { answer(api->GetJsTask(who, req.name(), req.version())); },
                    Always<pb::GetJsTaskRequest>});
  using JsRemoveCall = UnaryCall<pb::RemoveJsTaskRequest, pb::RemoveJsTaskResponse>;
  Serve<JsRemoveCall>(q, &methods_,
                      {this, RC_REQUEST(RemoveJsTask), ClientOp::kPublishJsTask,
                       [](ClientApi* api, const Principal& who, const pb::RemoveJsTaskRequest& req,
                          JsRemoveCall::Answer answer) { answer(api->RemoveJsTask(who, req.name(), req.version())); },
                       Always<pb::RemoveJsTaskRequest>});
  using CompleteCall = UnaryCall<pb::CompleteTaskRequest, pb::CompleteTaskResponse>;
  Serve<CompleteCall>(q, &methods_,
                      {this, RC_REQUEST(CompleteTask), ClientOp::kCompleteTask,
                       [](ClientApi* api, const Principal& who, const pb::CompleteTaskRequest& req,
                          CompleteCall::Answer answer) { answer(api->CompleteTask(who, req)); },
                       Always<pb::CompleteTaskRequest>});
  Serve<WatchCall<pb::GetTaskRequest>>(
      q, &methods_,
      {this, RC_REQUEST(WatchTask), ClientOp::kWatchTask,
       [](ClientApi* api, const Principal& who, const pb::GetTaskRequest& req, const std::shared_ptr<WatchSink>& sink) {
         WatchSink::Watch(sink, api, who, req.task_id());
       },
       Always<pb::GetTaskRequest>});
  Serve<WatchCall<pb::SubmitRequest>>(
      q, &methods_,
      {this, RC_REQUEST(SubmitAndWatch), ClientOp::kSubmit,
       // A refused submit ends the call with its error; an accepted one is watched.
       [](ClientApi* api, const Principal& who, const pb::SubmitRequest& req, const std::shared_ptr<WatchSink>& sink) {
         api->Submit(who, req.spec(), [api, who, sink](absl::StatusOr<SubmitResult> r) {
           if (!r.ok()) return sink->Abort(r.status());
           WatchSink::Watch(sink, api, who, r->task_id);
         });
       },
       [](const Principal& who, const pb::SubmitRequest& req) { return SubmitMayRead(who, req.spec()); }});
  ListenWaitTasks(q);
}

#undef RC_REQUEST

}  // namespace rc::coordinator
