#include "bench/scale_sim_fleet.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace rc::bench {

// One simulated worker: the worker side of Connect as a callback reactor. One read is
// always pending; at most one write is in flight and whatever is queued meanwhile is
// merged into a single next message (as the real worker's outbox batches events).
class SimWorker final : public grpc::ClientBidiReactor<pb::WorkerMessage, pb::CoordinatorMessage> {
 public:
  SimWorker(Fleet* fleet, pb::Capabilities caps) : fleet_(fleet), caps_(std::move(caps)) {}

  void Start(pb::WorkerService::Stub* stub) {
    stub->async()->Connect(&context_, this);
    pb::WorkerMessage hello;
    *hello.mutable_register_()->mutable_capabilities() = caps_;
    {
      absl::MutexLock lock(&mu_);
      SendLocked(std::move(hello));
    }
    StartRead(&in_);
    StartCall();
  }

  void Heartbeat() {
    if (!registered_.load(std::memory_order_acquire)) return;
    pb::WorkerMessage msg;
    msg.mutable_heartbeat()->set_running(0);  // echo finishes before the next read
    absl::MutexLock lock(&mu_);
    if (done_) return;
    SendLocked(std::move(msg));
    fleet_->mutable_counters().heartbeats.fetch_add(1, std::memory_order_relaxed);
  }

  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    if (in_.has_registered()) {
      registered_.store(true, std::memory_order_release);
      int64_t ms = in_.registered().heartbeat_interval_ms();
      fleet_->OnRegistered(ms > 0 ? absl::Milliseconds(ms) : absl::Seconds(1));
    }
    FleetCounters& counters = fleet_->mutable_counters();
    if (in_.assignments_size() > 0) {
      // Instant echo, as the built-in echo handler: started and finished in one message
      // (the coordinator applies started before finished), result = the payload.
      const int64_t now_ms = absl::ToUnixMillis(absl::Now());
      pb::WorkerMessage out;
      for (const pb::Assignment& a : in_.assignments()) {
        pb::TaskStarted* s = out.add_started();
        s->set_task_id(a.task_id());
        s->set_attempt(a.attempt());
        s->set_started_at_ms(now_ms);
        pb::TaskFinished* f = out.add_finished();
        f->set_task_id(a.task_id());
        f->set_attempt(a.attempt());
        f->set_status(pb::TASK_STATUS_SUCCESS);
        f->set_result(a.payload());
        f->set_started_at_ms(now_ms);
        f->set_finished_at_ms(now_ms);
      }
      counters.assignments.fetch_add(in_.assignments_size(), std::memory_order_relaxed);
      counters.finished.fetch_add(in_.assignments_size(), std::memory_order_relaxed);
      absl::MutexLock lock(&mu_);
      if (!done_) SendLocked(std::move(out));
    }
    // Cancels need no answer here: an echo has always finished before its cancel arrives.
    counters.acks.fetch_add(in_.finished_acks_size(), std::memory_order_relaxed);
    in_.Clear();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      done_ = true;  // the stream broke; OnDone reports why
      return;
    }
    if (has_pending_) {
      has_pending_ = false;
      current_ = std::move(pending_);
      pending_.Clear();
      writing_ = true;
      StartWrite(&current_);
    }
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    registered_.store(false, std::memory_order_release);
    fleet_->OnEnded(caps_.device_id(), status);  // last touch: the fleet may free us after
  }

 private:
  void SendLocked(pb::WorkerMessage msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_) {
      pending_.MergeFrom(msg);
      has_pending_ = true;
      return;
    }
    current_ = std::move(msg);
    writing_ = true;
    StartWrite(&current_);
  }

  Fleet* const fleet_;
  const pb::Capabilities caps_;
  grpc::ClientContext context_;
  pb::CoordinatorMessage in_;  // touched only by the read reactions, one at a time
  std::atomic<bool> registered_{false};

  absl::Mutex mu_;
  pb::WorkerMessage current_ ABSL_GUARDED_BY(mu_);  // being written
  pb::WorkerMessage pending_ ABSL_GUARDED_BY(mu_);  // queued behind it
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

Fleet::Fleet(FleetOptions options) : options_(std::move(options)) {}

Fleet::~Fleet() { Stop(); }

void Fleet::Start() {
  const int per_channel = std::max(1, options_.streams_per_channel);
  const int channels = (options_.workers + per_channel - 1) / per_channel;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    // Channels with equal arguments share one subchannel (one TCP connection) from the
    // global pool; a local pool and a distinct argument give each its own connection,
    // so no connection hits the HTTP/2 concurrent-stream limit.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("rc.scale_sim.channel", c);
    auto channel = grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
    stubs_.push_back(pb::WorkerService::NewStub(channel));
  }
  const int width = static_cast<int>(std::to_string(std::max(0, options_.workers - 1)).size());
  for (int i = 0; i < options_.workers; ++i) {
    pb::Capabilities caps;
    caps.set_device_id(absl::StrFormat("%s%0*d", options_.id_prefix, width, i));
    caps.set_hostname("scale-sim");
    caps.set_platform("linux");
    caps.set_arch("x86_64");
    caps.set_role("worker");
    caps.set_cpu_cores(options_.slots);
    caps.set_memory_gb(8);
    caps.set_storage_gb(100);
    caps.add_task_types("echo");
    caps.set_slots(options_.slots);
    caps.set_version(RC_VERSION);
    workers_.push_back(std::make_unique<SimWorker>(this, std::move(caps)));
  }
  for (int i = 0; i < options_.workers; ++i) workers_[i]->Start(stubs_[i / per_channel].get());
  sweeper_ = std::thread([this] { SweepHeartbeats(); });
}

// A cursor sweeps over all workers once per heartbeat interval, so every worker sends
// one heartbeat per interval and the coordinator sees a steady rate, not bursts.
void Fleet::SweepHeartbeats() {
  constexpr absl::Duration kTick = absl::Milliseconds(5);
  const size_t n = workers_.size();
  if (n == 0) return;
  absl::Time sweep_start = absl::Now();
  size_t cursor = 0;  // workers [0, cursor) already beat in this sweep
  while (!stop_sweeping_.WaitForNotificationWithTimeout(kTick)) {
    absl::Duration interval;
    {
      absl::MutexLock lock(&mu_);
      interval = heartbeat_interval_;
    }
    double fraction = std::min(1.0, absl::FDivDuration(absl::Now() - sweep_start, interval));
    size_t until = static_cast<size_t>(fraction * n);
    for (; cursor < until; ++cursor) workers_[cursor]->Heartbeat();
    if (cursor >= n) {
      cursor = 0;
      sweep_start += interval;
    }
  }
}

bool Fleet::WaitRegistered(absl::Duration timeout) {
  const int n = options_.workers;
  absl::MutexLock lock(&mu_);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return registered_ >= n || ended_ > 0; };
  mu_.AwaitWithTimeout(absl::Condition(&settled), timeout);
  return registered_ >= n;
}

void Fleet::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_sweeping_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& w : workers_) w->Cancel();
  const int n = static_cast<int>(workers_.size());
  bool all_done;
  {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_ >= n; };
    all_done = mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30));
  }
  if (!all_done) {
    // gRPC still owns some reactors; freeing them would crash, so leave them to exit.
    for (auto& w : workers_) w.release();
  }
  workers_.clear();
}

int Fleet::registered() const {
  absl::MutexLock lock(&mu_);
  return registered_;
}

int Fleet::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

std::string Fleet::first_error() const {
  absl::MutexLock lock(&mu_);
  return first_error_;
}

void Fleet::OnRegistered(absl::Duration heartbeat_interval) {
  absl::MutexLock lock(&mu_);
  ++registered_;
  heartbeat_interval_ = heartbeat_interval;
}

void Fleet::OnEnded(const std::string& device_id, const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  ++ended_;
  if (!stopping_ && first_error_.empty()) {
    first_error_ = absl::StrCat("stream of ", device_id, " ended: code ", static_cast<int>(status.error_code()), " ",
                                status.error_message());
  }
}

}  // namespace rc::bench
