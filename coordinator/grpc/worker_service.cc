// WorkerService on the gRPC callback API: one bidirectional stream per worker process,
// one read and one write in flight, an outbox (StreamLink) for everything the core sends.
#include "coordinator/grpc/grpc_services.h"
#include "coordinator/grpc/refused_calls.h"
#include "coordinator/grpc/stream_link.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

using Stream = grpc::ServerBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage>;

class WorkerStream final : public Stream, private StreamWriter {
 public:
  explicit WorkerStream(Coordinator* core) : core_(core), link_(std::make_shared<StreamLink>(static_cast<StreamWriter*>(this))) {
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
                                !in_.has_register_() && !in_.draining() && !in_.deregister() &&
                                !in_.has_waiting();
    if (!heartbeat_only || heard_ == nullptr) core_->HandleWorkerMessage(device_id_, epoch_, in_);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override { link_->WriteDone(ok); }

  void OnDone() override {
    link_->Detach();
    if (epoch_ != 0) core_->WorkerDisconnected(device_id_, epoch_);
    delete this;
  }

 private:
  // StreamWriter: what the link writes goes out on this reactor.
  void Write(const pb::CoordinatorMessage* message) override { StartWrite(message); }
  void End(const grpc::Status& status) override { Finish(status); }

  Coordinator* const core_;
  std::shared_ptr<StreamLink> link_;
  pb::WorkerMessage in_;
  uint64_t epoch_ = 0;  // set once registered; read/written only by reactions, one at a time
  std::string device_id_;
  std::shared_ptr<Heard> heard_;
};

}  // namespace

Stream* WorkerServiceImpl::Connect(grpc::CallbackServerContext* ctx) {
  if (absl::Status s = AuthenticateWorker(*tokens_, AuthorizationOf(*ctx), ctx->peer(), PeerCertified(*ctx)); !s.ok()) {
    spdlog::warn("worker connection from {} refused: {}", ctx->peer(), std::string(s.message()));
    return new RefusedBidi<pb::WorkerMessage, pb::CoordinatorMessage>(s);
  }
  return new WorkerStream(core_);
}

}  // namespace rc::coordinator
