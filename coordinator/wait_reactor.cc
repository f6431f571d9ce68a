// ClientService.WaitTasks: one bidi stream on which a client names tasks and gets each
// back once, terminal. Results that finish while a write is in flight travel together
// in the next message, so a busy stream sends few, large messages.
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/task_names.h"
#include "coordinator/grpc_services.h"

namespace rc::coordinator {
namespace {

class WaitReactor final : public grpc::ServerBidiReactor<pb::WaitTasksRequest, pb::WaitTasksResponse> {
 public:
  explicit WaitReactor(Coordinator* core) : core_(core), sink_(std::make_shared<Sink>(this)) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      sink_->ReadsDone();  // the client sends no more ids; finish once all are answered
      return;
    }
    std::vector<std::string> ids(request_.task_ids().begin(), request_.task_ids().end());
    std::vector<absl::StatusOr<uint64_t>> watches = core_->WatchAll(ids, sink_);
    for (size_t i = 0; i < ids.size(); ++i) sink_->Watching(ids[i], watches[i]);
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override { sink_->WriteDone(ok); }
  void OnCancel() override { sink_->Abort(absl::CancelledError("wait cancelled by client")); }
  void OnDone() override {
    for (auto& [task_id, watch_id] : sink_->Detach()) core_->Unwatch(task_id, watch_id);
    delete this;
  }

 private:
  class Sink final : public TaskSink {
   public:
    explicit Sink(WaitReactor* r) : reactor_(r) {}

    bool TerminalOnly() const override { return true; }

    void OnTask(const pb::Task& t) override {
      if (!IsTerminal(t.status())) return;
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || finishing_) return;
      // The terminal snapshot can arrive before Watching() records the handle.
      if (watching_.erase(t.task_id()) == 0) answered_early_.insert(t.task_id());
      *pending_.add_tasks() = t;
      PumpLocked();
    }
    void Abort(absl::Status s) override {
      absl::MutexLock lock(&mu_);
      if (reactor_ == nullptr || finishing_ || final_status_.has_value()) return;
      final_status_ = std::move(s);
      PumpLocked();
    }
    void Watching(const std::string& task_id, const absl::StatusOr<uint64_t>& watch) {
      absl::MutexLock lock(&mu_);
      if (!watch.ok()) {
        pb::WaitError* e = pending_.add_errors();
        e->set_task_id(task_id);
        e->set_error_code(static_cast<int>(watch.status().code()));
        e->set_error_message(std::string(watch.status().message()));
      } else if (answered_early_.erase(task_id) == 0) {
        watching_.emplace(task_id, *watch);
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
      return std::move(watching_);
    }

   private:
    void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (writing_ || finishing_ || reactor_ == nullptr) return;
      if (final_status_.has_value()) {
        finishing_ = true;
        reactor_->Finish(ToGrpcStatus(*final_status_));
        return;
      }
      if (pending_.tasks_size() > 0 || pending_.errors_size() > 0) {
        current_ = std::move(pending_);
        pending_.Clear();
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
    WaitReactor* reactor_ ABSL_GUARDED_BY(mu_);
    absl::flat_hash_map<std::string, uint64_t> watching_ ABSL_GUARDED_BY(mu_);
    absl::flat_hash_set<std::string> answered_early_ ABSL_GUARDED_BY(mu_);
    pb::WaitTasksResponse pending_ ABSL_GUARDED_BY(mu_);
    pb::WaitTasksResponse current_ ABSL_GUARDED_BY(mu_);
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
    bool finishing_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  };

  Coordinator* const core_;
  pb::WaitTasksRequest request_;
  std::shared_ptr<Sink> sink_;
};

}  // namespace

grpc::ServerBidiReactor<pb::WaitTasksRequest, pb::WaitTasksResponse>* ClientServiceImpl::WaitTasks(
    grpc::CallbackServerContext* ctx) {
  return new WaitReactor(core_);
}

}  // namespace rc::coordinator
