#include "coordinator/grpc/stream_link.h"

#include <utility>
#include <vector>

#include "common/grpc_status.h"

namespace rc::coordinator {
namespace {

// Splits a message whose assignments pass kMaxWorkerMessageBytes into several; the first
// keeps everything else.
std::vector<pb::CoordinatorMessage> SplitBySize(pb::CoordinatorMessage msg, size_t size) {
  std::vector<pb::CoordinatorMessage> out;
  if (size <= kMaxWorkerMessageBytes) {
    out.push_back(std::move(msg));
    return out;
  }
  google::protobuf::RepeatedPtrField<pb::Assignment> assignments;
  assignments.Swap(msg.mutable_assignments());
  out.push_back(std::move(msg));
  size_t bytes = out.back().ByteSizeLong();
  for (pb::Assignment& a : assignments) {
    const size_t n = a.ByteSizeLong() + 8;  // with its tag and length
    if (bytes > 0 && bytes + n > kMaxWorkerMessageBytes) {
      out.emplace_back();
      bytes = 0;
    }
    *out.back().add_assignments() = std::move(a);
    bytes += n;
  }
  return out;
}

}  // namespace

void StreamLink::Send(pb::CoordinatorMessage msg) {
  const size_t size = msg.ByteSizeLong();
  std::vector<pb::CoordinatorMessage> parts = SplitBySize(std::move(msg), size);
  absl::MutexLock lock(&mu_);
  if (writer_ == nullptr || closing_.has_value()) return;
  TakeLaterLocked(&parts.front());
  for (pb::CoordinatorMessage& part : parts) {
    const size_t n = parts.size() == 1 ? size : part.ByteSizeLong();
    // front() is being written; a later one waits and may take more.
    if (outbox_.size() > 1 && back_bytes_ + n <= kMaxWorkerMessageBytes) {
      outbox_.back().MergeFrom(part);
      back_bytes_ += n;
    } else {
      outbox_.push_back(std::move(part));
      back_bytes_ = n;
    }
  }
  PumpLocked();
}

void StreamLink::SendLater(pb::CoordinatorMessage msg) {
  absl::MutexLock lock(&mu_);
  if (writer_ == nullptr || closing_.has_value()) return;
  const size_t n = msg.ByteSizeLong();
  if (outbox_.size() > 1 && back_bytes_ + n <= kMaxWorkerMessageBytes) {  // a message waits anyway: join it
    outbox_.back().MergeFrom(msg);
    back_bytes_ += n;
    return;
  }
  later_.MergeFrom(msg);
  later_bytes_ += n;
  if (later_bytes_ >= kMaxLaterBytes) FlushLocked();
}

void StreamLink::Flush() {
  absl::MutexLock lock(&mu_);
  if (writer_ == nullptr || closing_.has_value()) return;
  FlushLocked();
}

void StreamLink::Close(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (writer_ == nullptr || closing_.has_value()) return;
  FlushLocked();  // what waited still goes before the end
  closing_ = status;
  PumpLocked();
}

void StreamLink::WriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  outbox_.pop_front();
  if (!ok) {
    outbox_.clear();
    if (!closing_.has_value()) closing_ = absl::UnavailableError("worker stream broken");
  }
  PumpLocked();
}

void StreamLink::Detach() {
  absl::MutexLock lock(&mu_);
  writer_ = nullptr;
}

void StreamLink::TakeLaterLocked(pb::CoordinatorMessage* msg) {
  if (later_bytes_ == 0) return;
  msg->MergeFrom(later_);
  later_.Clear();
  later_bytes_ = 0;
}

void StreamLink::FlushLocked() {
  if (later_bytes_ == 0) return;
  pb::CoordinatorMessage msg;
  msg.Swap(&later_);
  later_bytes_ = 0;
  outbox_.push_back(std::move(msg));
  back_bytes_ = outbox_.back().ByteSizeLong();
  PumpLocked();
}

void StreamLink::PumpLocked() {
  if (writing_ || finished_ || writer_ == nullptr) return;
  if (!outbox_.empty()) {
    writing_ = true;
    writer_->Write(&outbox_.front());
    return;
  }
  if (closing_.has_value()) {
    finished_ = true;
    writer_->End(ToGrpcStatus(*closing_));
  }
}

}  // namespace rc::coordinator
