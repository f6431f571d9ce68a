// WorkerService on the gRPC callback API: one bidirectional stream per worker process,
// one read and one write in flight, an outbox for everything the core sends.
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "coordinator/grpc/grpc_services.h"
#include "coordinator/grpc/refused_calls.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

using Stream = grpc::ServerBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage>;

// Messages to a worker stay under this size where they can (gRPC's default receive
// limit is 4 MiB); one larger assignment still goes, alone.
constexpr size_t kMaxMessageBytes = 4 << 20;
// SendLater keeps at most about this much before it sends it anyway (~1,500 acknowledgements).
constexpr size_t kMaxLaterBytes = 64 << 10;

// Splits a message whose assignments pass kMaxMessageBytes into several; the first
// keeps everything else.
std::vector<pb::CoordinatorMessage> SplitBySize(pb::CoordinatorMessage msg, size_t size) {
  std::vector<pb::CoordinatorMessage> out;
  if (size <= kMaxMessageBytes) {
    out.push_back(std::move(msg));
    return out;
  }
  google::protobuf::RepeatedPtrField<pb::Assignment> assignments;
  assignments.Swap(msg.mutable_assignments());
  out.push_back(std::move(msg));
  size_t bytes = out.back().ByteSizeLong();
  for (pb::Assignment& a : assignments) {
    const size_t n = a.ByteSizeLong() + 8;  // with its tag and length
    if (bytes > 0 && bytes + n > kMaxMessageBytes) {
      out.emplace_back();
      bytes = 0;
    }
    *out.back().add_assignments() = std::move(a);
    bytes += n;
  }
  return out;
}

// The core's handle on one stream. Messages queued while a write is in flight are
// merged (several assignments travel together) up to kMaxMessageBytes, which also
// keeps memory bounded by what the worker has not yet received.
class StreamLink final : public WorkerLink {
 public:
  explicit StreamLink(Stream* stream) : stream_(stream) {}

  void Send(pb::CoordinatorMessage msg) override {
    const size_t size = msg.ByteSizeLong();
    std::vector<pb::CoordinatorMessage> parts = SplitBySize(std::move(msg), size);
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    TakeLaterLocked(&parts.front());
    for (pb::CoordinatorMessage& part : parts) {
      const size_t n = parts.size() == 1 ? size : part.ByteSizeLong();
      // front() is being written; a later one waits and may take more.
      if (outbox_.size() > 1 && back_bytes_ + n <= kMaxMessageBytes) {
        outbox_.back().MergeFrom(part);
        back_bytes_ += n;
      } else {
        outbox_.push_back(std::move(part));
        back_bytes_ = n;
      }
    }
    PumpLocked();
  }

  void SendLater(pb::CoordinatorMessage msg) override {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    const size_t n = msg.ByteSizeLong();
    if (outbox_.size() > 1 && back_bytes_ + n <= kMaxMessageBytes) {  // a message waits anyway: join it
      outbox_.back().MergeFrom(msg);
      back_bytes_ += n;
      return;
    }
    later_.MergeFrom(msg);
    later_bytes_ += n;
    if (later_bytes_ >= kMaxLaterBytes) FlushLocked();
  }

  void Flush() override {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    FlushLocked();
  }

  void Close(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr || closing_.has_value()) return;
    FlushLocked();  // what waited still goes before the end
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
  // Moves what SendLater kept into `msg`.
  void TakeLaterLocked(pb::CoordinatorMessage* msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (later_bytes_ == 0) return;
    msg->MergeFrom(later_);
    later_.Clear();
    later_bytes_ = 0;
  }
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (later_bytes_ == 0) return;
    pb::CoordinatorMessage msg;
    msg.Swap(&later_);
    later_bytes_ = 0;
    outbox_.push_back(std::move(msg));
    back_bytes_ = outbox_.back().ByteSizeLong();
    PumpLocked();
  }

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
  size_t back_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of outbox_.back(), about
  // What SendLater kept for the next message (later_bytes_ > 0 when there is any).
  pb::CoordinatorMessage later_ ABSL_GUARDED_BY(mu_);
  size_t later_bytes_ ABSL_GUARDED_BY(mu_) = 0;
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
