#pragma once
// The core's handle on one worker stream (WorkerLink over gRPC): an outbox with one write
// in flight, messages queued meanwhile merged, and acknowledgements that wait to ride
// along with the next message (SendLater) or go at the next Flush. The stream itself is
// behind StreamWriter, so the outbox is tested without gRPC (tests/unit/stream_link_test.cc).

#include <cstddef>
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/core/links.h"
#include "grpcpp/support/status.h"

namespace rc::coordinator {

// Messages to a worker stay under this size where they can (gRPC's default receive
// limit is 4 MiB); one larger assignment still goes, alone.
inline constexpr size_t kMaxWorkerMessageBytes = 4 << 20;
// SendLater keeps at most about this much before it sends it anyway (~1,500 acknowledgements).
inline constexpr size_t kMaxLaterBytes = 64 << 10;

// What StreamLink writes to: the gRPC reactor (one write in flight at a time; its
// completion comes back as StreamLink::WriteDone, never from inside Write).
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual void Write(const pb::CoordinatorMessage* message) = 0;
  virtual void End(const grpc::Status& status) = 0;
};

// Messages queued while a write is in flight are merged (several assignments travel
// together) up to kMaxWorkerMessageBytes, which also keeps memory bounded by what the
// worker has not yet received.
class StreamLink final : public WorkerLink {
 public:
  explicit StreamLink(StreamWriter* writer) : writer_(writer) {}

  void Send(pb::CoordinatorMessage msg) override;
  void SendLater(pb::CoordinatorMessage msg) override;
  void Flush() override;
  void Close(absl::Status status) override;
  // The write started last has completed (`ok` false: the stream broke).
  void WriteDone(bool ok);
  // The stream is gone: later calls do nothing.
  void Detach();

 private:
  // Moves what SendLater kept into `msg`.
  void TakeLaterLocked(pb::CoordinatorMessage* msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  StreamWriter* writer_ ABSL_GUARDED_BY(mu_);
  std::deque<pb::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
  size_t back_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of outbox_.back(), about
  // What SendLater kept for the next message (later_bytes_ > 0 when there is any).
  pb::CoordinatorMessage later_ ABSL_GUARDED_BY(mu_);
  size_t later_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> closing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
