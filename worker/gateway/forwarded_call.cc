#include "worker/gateway/forwarded_call.h"

#include <chrono>

namespace rc::worker {

bool AttemptLink::Register(ForwardedCall* call, bool waiting) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    calls_.insert(call);
    if (waiting) ++waiting_calls_;
  }
  if (waiting) ReportWaiting();
  return true;
}

void AttemptLink::Unregister(ForwardedCall* call, bool waiting) {
  {
    absl::MutexLock lock(&mu_);
    calls_.erase(call);
    if (waiting) --waiting_calls_;
  }
  if (waiting) ReportWaiting();
}

void AttemptLink::Close() {
  std::vector<ForwardedCall*> calls;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    for (ForwardedCall* c : calls_) {
      c->Ref();  // registered, so alive; kept so until cancelled below
      calls.push_back(c);
    }
  }
  // Outside the lock: a cancel may run the call's reactions (and Unregister) inline.
  for (ForwardedCall* c : calls) {
    c->Cancel();
    c->Unref();
  }
}

void AttemptLink::ReportWaiting() {
  // The listener (the Executor) is called under report_mu_ only, which exists to order
  // the reports: each says the state as it is now, so the last one is always right.
  absl::MutexLock report(&report_mu_);
  bool now;
  {
    absl::MutexLock lock(&mu_);
    now = waiting_calls_ > 0;
  }
  if (now == reported_waiting_) return;
  reported_waiting_ = now;
  if (on_waiting_) on_waiting_(task_id_, attempt_, now);
}

namespace {

class Refusal final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Refusal(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

class ForwardedCall::Downstream final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Downstream(ForwardedCall* call) : call_(call) {}
  void OnReadDone(bool ok) override { call_->DownstreamRead(ok); }
  void OnWriteDone(bool ok) override { call_->DownstreamWritten(ok); }
  void OnCancel() override { call_->Cancel(); }
  void OnDone() override { call_->Unref(); }

 private:
  ForwardedCall* const call_;
};

class ForwardedCall::Upstream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit Upstream(ForwardedCall* call) : call_(call) {}
  void OnReadDone(bool ok) override { call_->UpstreamRead(ok); }
  void OnWriteDone(bool ok) override { call_->UpstreamWritten(ok); }
  void OnWritesDoneDone(bool /*ok*/) override { call_->UpstreamWritesDone(); }
  void OnDone(const grpc::Status& status) override { call_->UpstreamDone(status); }

 private:
  ForwardedCall* const call_;
};

grpc::ServerGenericBidiReactor* ForwardedCall::Refuse(grpc::Status status) { return new Refusal(std::move(status)); }

ForwardedCall::ForwardedCall(std::shared_ptr<AttemptLink> link, bool waiting)
    : link_(std::move(link)),
      waiting_(waiting),
      downstream_(std::make_unique<Downstream>(this)),
      upstream_(std::make_unique<Upstream>(this)) {}

ForwardedCall::~ForwardedCall() = default;

void ForwardedCall::Unref() {
  if (refs_.fetch_sub(1) == 1) delete this;
}

grpc::ServerGenericBidiReactor* ForwardedCall::Start(grpc::GenericCallbackServerContext* context,
                                                     grpc::GenericStub* stub, std::shared_ptr<AttemptLink> link,
                                                     bool waiting) {
  auto* call = new ForwardedCall(link, waiting);
  if (!link->Register(call, waiting)) {
    delete call;
    return Refuse(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "the attempt " + std::to_string(link->attempt()) + " of " + link->task_id() +
                                   " has ended; its socket serves no more calls"));
  }
  // Only the attempt's token goes upstream: never what the task sent, never the worker's.
  call->upstream_context_.AddMetadata("authorization", "Bearer " + link->token());
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    call->upstream_context_.set_deadline(context->deadline());
  }
  stub->PrepareBidiStreamingCall(&call->upstream_context_, context->method(), grpc::StubOptions(),
                                 call->upstream_.get());
  // Two holds keep the upstream call from ending between operations that the other side
  // starts: one per direction, released when that direction can start no more.
  call->upstream_->AddMultipleHolds(2);
  call->upstream_->StartRead(&call->response_);
  call->upstream_->StartCall();
  call->downstream_->StartRead(&call->request_);
  return call->downstream_.get();
}

bool ForwardedCall::TakeRequestHoldLocked() {
  if (requests_ended_ || requests_in_transit_) return false;
  requests_ended_ = true;
  return true;
}

void ForwardedCall::DownstreamRead(bool ok) {
  bool forward;
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    forward = !upstream_over_ && !requests_ended_;
    if (forward) {
      requests_in_transit_ = true;
    } else {
      release = TakeRequestHoldLocked();
    }
  }
  if (!forward) {
    if (release) upstream_->RemoveHold();
    return;
  }
  if (ok) {
    upstream_->StartWrite(&request_);
  } else {
    upstream_->StartWritesDone();  // the task half-closed: so does the upstream call
  }
}

void ForwardedCall::UpstreamWritten(bool ok) {
  bool next;
  {
    absl::MutexLock lock(&mu_);
    next = ok && !upstream_over_;
  }
  // Still in transit while the next read starts: the upstream call (and this object)
  // cannot end before it is pending.
  if (next) downstream_->StartRead(&request_);
  bool release;
  {
    absl::MutexLock lock(&mu_);
    requests_in_transit_ = false;
    release = (!next || upstream_over_) && TakeRequestHoldLocked();
  }
  if (release) upstream_->RemoveHold();
}

void ForwardedCall::UpstreamWritesDone() {
  bool release;
  {
    absl::MutexLock lock(&mu_);
    requests_in_transit_ = false;
    release = TakeRequestHoldLocked();
  }
  if (release) upstream_->RemoveHold();
}

void ForwardedCall::UpstreamRead(bool ok) {
  if (ok) {
    downstream_->StartWrite(&response_);
    return;
  }
  EndResponses();
}

void ForwardedCall::DownstreamWritten(bool ok) {
  if (ok) {
    upstream_->StartRead(&response_);
    return;
  }
  Cancel();  // the task is gone: so is its call upstream
  EndResponses();
}

void ForwardedCall::EndResponses() {
  bool release_requests;
  {
    absl::MutexLock lock(&mu_);
    upstream_over_ = true;
    release_requests = TakeRequestHoldLocked();
  }
  if (release_requests) upstream_->RemoveHold();
  upstream_->RemoveHold();  // the response direction's
}

void ForwardedCall::UpstreamDone(const grpc::Status& status) {
  link_->Unregister(this, waiting_);
  downstream_->Finish(status);
  Unref();
}

}  // namespace rc::worker
