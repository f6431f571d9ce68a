// ClientService.WaitTasks (async API, async_call.h): one bidi stream on which a client names tasks and gets each
// back once, terminal. Results that finish while a write is in flight travel together
// in the next message, so a busy stream sends few, large messages.
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/task_names.h"
#include "coordinator/grpc/grpc_services.h"

namespace rc::coordinator {
namespace {

class WaitCall final : public AsyncBidi<pb::WaitTasksRequest, pb::WaitTasksResponse> {
 public:
  WaitCall(CallQueue* queue, ClientServiceImpl* service)
      : AsyncBidi(queue), api_(service->api()), service_(service), sink_(std::make_shared<Sink>(this)) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestWaitTasks(&ctx_, &stream_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new WaitCall(queue(), service_); }
  // `who` may wait only for tasks it may read (the API answers PERMISSION_DENIED per id).
  void OnStart() override {
    absl::StatusOr<Principal> who = service_->Caller(ctx_, ClientOp::kWatchTask);
    if (!who.ok()) return sink_->Abort(who.status());
    who_ = *std::move(who);
    stream_id_ = service_->AddStream(sink_);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      sink_->ReadsDone();  // the client sends no more ids; finish once all are answered
      return;
    }
    // Ids of tasks no longer in RAM are read from the store: off the queue's thread. The
    // next read starts after, so ids are handled in the order they came.
    Retain();
    service_->blocking()->Run([this] {
      std::vector<std::string> ids = sink_->Expect(request_.task_ids());
      std::vector<absl::StatusOr<uint64_t>> watches = api_->WatchAll(who_, ids, sink_);
      sink_->Watching(ids, watches);
      StartRead(&request_);
      Release();
    });
  }
  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Abort(absl::CancelledError("wait cancelled by client")); }
  void OnDone() override {
    if (stream_id_ != 0) service_->RemoveStream(stream_id_);
    for (auto& [task_id, watch_id] : sink_->Detach()) api_->Unwatch(task_id, watch_id);
  }

  class Sink final : public TaskSink {
   public:
    explicit Sink(WaitCall* r) : reactor_(r) {}

    bool TerminalOnly() const override { return true; }

    void OnTask(pb::Task t) override {
      if (!IsTerminal(t.status())) return;
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || finishing_) return;
      if (watching_.erase(t.task_id()) == 0) return;  // not waited for (any more)
      pending_tasks_.push_back(std::move(t));
      PumpLocked();
    }
    void Abort(absl::Status s) override {
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || finishing_ || final_status_.has_value()) return;
      final_status_ = std::move(s);
      PumpLocked();
    }
    // Records `ids` as waited for before the core is asked (its answer may come at
    // once); returns those not already waited for on this stream, each once.
    std::vector<std::string> Expect(const google::protobuf::RepeatedPtrField<std::string>& ids) {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> fresh;
      for (const std::string& id : ids) {
        if (watching_.emplace(id, 0).second) fresh.push_back(id);
      }
      return fresh;
    }
    // The core's answers for `ids`: handles to unwatch later, or errors to send.
    void Watching(const std::vector<std::string>& ids, const std::vector<absl::StatusOr<uint64_t>>& watches) {
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < ids.size(); ++i) {
        auto it = watching_.find(ids[i]);
        if (it == watching_.end()) continue;  // answered already
        if (watches[i].ok()) {
          it->second = *watches[i];
          continue;
        }
        watching_.erase(it);
        pb::WaitError& e = pending_errors_.emplace_back();
        e.set_task_id(ids[i]);
        e.set_error_code(static_cast<int>(watches[i].status().code()));
        e.set_error_message(std::string(watches[i].status().message()));
      }
      PumpLocked();
    }
    void ReadsDone() {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      PumpLocked();
    }
    void WriteDone(bool ok) {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !final_status_.has_value()) final_status_ = absl::CancelledError("wait stream broken");
      PumpLocked();
    }
    // The handles still registered with the core (the stream ended without them).
    absl::flat_hash_map<std::string, uint64_t> Detach() {
      absl::MutexLock lock(&mu_);
      reactor_ = nullptr;
      absl::flat_hash_map<std::string, uint64_t> out = std::move(watching_);
      watching_.clear();
      absl::erase_if(out, [](const auto& w) { return w.second == 0; });
      return out;
    }

   private:
    void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (writing_ || finishing_ || reactor_ == nullptr) return;
      if (final_status_.has_value()) {
        finishing_ = true;
        reactor_->Finish(ToGrpcStatus(*final_status_));
        return;
      }
      if (!pending_tasks_.empty() || !pending_errors_.empty()) {
        // Up to about 4 MiB per message (a client's usual receive limit); one larger
        // result still goes, alone.
        current_.Clear();
        size_t bytes = 0;
        for (const pb::WaitError& e : pending_errors_) bytes += e.ByteSizeLong() + 8;
        while (!pending_tasks_.empty() &&
               (current_.tasks_size() == 0 || bytes + pending_tasks_.front().ByteSizeLong() + 8 <= kMaxMessage)) {
          bytes += pending_tasks_.front().ByteSizeLong() + 8;  // with its tag and length
          *current_.add_tasks() = std::move(pending_tasks_.front());
          pending_tasks_.pop_front();
        }
        for (pb::WaitError& e : pending_errors_) *current_.add_errors() = std::move(e);
        pending_errors_.clear();
        writing_ = true;
        reactor_->StartWrite(&current_);
        return;
      }
      if (reads_done_ && watching_.empty()) {
        finishing_ = true;
        reactor_->Finish(grpc::Status::OK);
      }
    }

    absl::Mutex mu_;
    WaitCall* reactor_ ABSL_GUARDED_BY(mu_);
    static constexpr size_t kMaxMessage = (4 << 20) - (64 << 10);
    // Waited-for ids; the handle is 0 until the core returned it.
    absl::flat_hash_map<std::string, uint64_t> watching_ ABSL_GUARDED_BY(mu_);
    std::deque<pb::Task> pending_tasks_ ABSL_GUARDED_BY(mu_);
    std::vector<pb::WaitError> pending_errors_ ABSL_GUARDED_BY(mu_);
    pb::WaitTasksResponse current_ ABSL_GUARDED_BY(mu_);
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
    bool finishing_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  };

  ClientApi* const api_;
  ClientServiceImpl* const service_;
  Principal who_;  // set by OnStart
  pb::WaitTasksRequest request_;
  std::shared_ptr<Sink> sink_;
  uint64_t stream_id_ = 0;  // registered with the service (OnStart); 0: not
};

}  // namespace

void ClientServiceImpl::ListenWaitTasks(CallQueue* queue) { (new WaitCall(queue, this))->Listen(); }

uint64_t ClientServiceImpl::AddStream(std::weak_ptr<TaskSink> sink) {
  absl::MutexLock lock(&streams_mu_);
  streams_.emplace(next_stream_, std::move(sink));
  return next_stream_++;
}

void ClientServiceImpl::RemoveStream(uint64_t id) {
  absl::MutexLock lock(&streams_mu_);
  streams_.erase(id);
}

void ClientServiceImpl::EndStreams() {
  std::vector<std::shared_ptr<TaskSink>> open;
  {
    absl::MutexLock lock(&streams_mu_);
    for (auto& [id, sink] : streams_) {
      if (auto s = sink.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) s->Abort(absl::UnavailableError("coordinator is shutting down"));
}

}  // namespace rc::coordinator
