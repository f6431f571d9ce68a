// WorkerService on the gRPC async API (async_call.h): one bidirectional stream per worker
// process, one read and one write in flight, an outbox (StreamLink) for everything the
// core sends.
#include "coordinator/grpc/grpc_services.h"
#include "coordinator/grpc/stream_link.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

class WorkerStream final : public AsyncBidi<pb::WorkerMessage, pb::CoordinatorMessage>, private StreamWriter {
 public:
  WorkerStream(CallQueue* queue, pb::WorkerService::AsyncService* service, Coordinator* core, const TokenTable* tokens)
      : AsyncBidi(queue),
        service_(service),
        core_(core),
        tokens_(tokens),
        link_(std::make_shared<StreamLink>(static_cast<StreamWriter*>(this))) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestConnect(&ctx_, &stream_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new WorkerStream(queue(), service_, core_, tokens_); }

  // A stream is refused with UNAUTHENTICATED unless it carries a join token (or, without
  // join tokens, comes from a loopback peer).
  void OnStart() override {
    if (absl::Status s = AuthenticateWorker(*tokens_, AuthorizationOf(ctx_), ctx_.peer(), PeerCertified(ctx_));
        !s.ok()) {
      spdlog::warn("worker connection from {} refused: {}", ctx_.peer(), std::string(s.message()));
      link_->Close(s);
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker closed its side or the connection broke
      link_->Close(absl::OkStatus());
      return;
    }
    if (epoch_ == 0) {
      if (!in_.has_register_()) {
        link_->Close(absl::FailedPreconditionError("the first message on a worker stream must be register"));
        return;
      }
      absl::StatusOr<uint64_t> epoch = core_->RegisterWorker(in_.register_(), link_, in_.draining());
      if (!epoch.ok()) {
        link_->Close(epoch.status());
        return;
      }
      epoch_ = *epoch;
      device_id_ = in_.register_().capabilities().device_id();
      heard_ = core_->HeardFor(device_id_, epoch_);
    }
    if (heard_ != nullptr) {
      if (in_.has_heartbeat()) heard_->load_average.store(in_.heartbeat().load_average(), std::memory_order_relaxed);
      heard_->at_ms.store(core_->NowMs(), std::memory_order_relaxed);  // any message proves liveness
    }
    // Keep in step with WorkerMessage: any field but heartbeat needs the core.
    const bool heartbeat_only = in_.started_size() == 0 && in_.finished_size() == 0 && in_.progress_size() == 0 &&
                                !in_.has_register_() && !in_.draining() && !in_.deregister() && !in_.has_waiting();
    if (!heartbeat_only || heard_ == nullptr) core_->HandleWorkerMessage(device_id_, epoch_, in_);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override { link_->WriteDone(ok); }

  void OnDone() override {
    link_->Detach();
    if (epoch_ != 0) core_->WorkerDisconnected(device_id_, epoch_);
  }

  // StreamWriter: what the link writes goes out on this reactor.
  void Write(const pb::CoordinatorMessage* message) override { StartWrite(message); }
  void End(const grpc::Status& status) override { Finish(status); }

  pb::WorkerService::AsyncService* const service_;
  Coordinator* const core_;
  const TokenTable* const tokens_;
  std::shared_ptr<StreamLink> link_;
  pb::WorkerMessage in_;
  uint64_t epoch_ = 0;  // set once registered; read/written only by reactions, one at a time
  std::string device_id_;
  std::shared_ptr<Heard> heard_;
};

}  // namespace

void WorkerServiceImpl::Listen(CallQueue* queue) { (new WorkerStream(queue, this, core_, tokens_))->Listen(); }

}  // namespace rc::coordinator
