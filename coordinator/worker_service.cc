// WorkerService on the gRPC callback API: one bidirectional stream per worker process,
// one read and one write in flight, an outbox for everything the core sends.
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "coordinator/grpc_services.h"

namespace rc::coordinator {
namespace {

using Stream = grpc::ServerBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage>;

// The core's handle on one stream. Messages queued while a write is in flight are
// merged into one (several assignments travel together), which also keeps memory
// bounded by what the worker has not yet received.
class StreamLink final : public WorkerLink {
 public:
  explicit StreamLink(Stream* stream) : stream_(stream) {}

  void Send(pb::CoordinatorMessage msg) override {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    if (outbox_.size() > 1) {
      outbox_.back().MergeFrom(msg);  // front() is being written; back() is waiting
    } else {
      outbox_.push_back(std::move(msg));
    }
    PumpLocked();
  }

  void Close(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    closing_ = status;
    PumpLocked();
  }

  void WriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    outbox_.pop_front();
    if (!ok) {
      outbox_.clear();
      if (!closing_.has_value()) closing_ = absl::UnavailableError("worker stream broken");
    }
    PumpLocked();
  }

  void Detach() {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
  }

 private:
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || stream_ == nullptr) return;
    if (!outbox_.empty()) {
      writing_ = true;
      stream_->StartWrite(&outbox_.front());
      return;
    }
    if (closing_.has_value()) {
      finished_ = true;
      stream_->Finish(ToGrpcStatus(*closing_));
    }
  }

  absl::Mutex mu_;
  Stream* stream_ ABSL_GUARDED_BY(mu_);
  std::deque<pb::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> closing_ ABSL_GUARDED_BY(mu_);
};

class WorkerStream final : public Stream {
 public:
  explicit WorkerStream(Coordinator* core) : core_(core), link_(std::make_shared<StreamLink>(this)) {
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
    const bool heartbeat_only = in_.started_size() == 0 && in_.finished_size() == 0 && in_.progress_size() == 0 &&
                                !in_.has_register_() && !in_.draining() && !in_.deregister();
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
  Coordinator* const core_;
  std::shared_ptr<StreamLink> link_;
  pb::WorkerMessage in_;
  uint64_t epoch_ = 0;  // set once registered; read/written only by reactions, one at a time
  std::string device_id_;
  std::shared_ptr<Heard> heard_;
};

}  // namespace

Stream* WorkerServiceImpl::Connect(grpc::CallbackServerContext* ctx) { return new WorkerStream(core_); }

}  // namespace rc::coordinator
