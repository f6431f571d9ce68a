#include "client/async.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rc::client::internal {

struct SubmitBatcher::Call {
  grpc::ClientContext ctx;
  pb::SubmitBatchRequest request;
  pb::SubmitBatchResponse response;
  std::vector<SubmitDone> dones;
};

SubmitBatcher::SubmitBatcher(pb::ClientService::Stub* stub, ConvertFn convert, absl::Duration rpc_timeout,
                             std::string authorization, int max_in_flight, size_t max_batch, size_t max_batch_bytes)
    : stub_(stub),
      convert_(std::move(convert)),
      rpc_timeout_(rpc_timeout),
      authorization_(std::move(authorization)),
      max_in_flight_(max_in_flight),
      max_batch_(max_batch),
      max_batch_bytes_(max_batch_bytes) {}

void SubmitBatcher::Add(pb::TaskSpec spec, SubmitDone done) {
  std::unique_ptr<Call> call;
  {
    absl::MutexLock lock(&mu_);
    queued_.push_back(std::move(spec));
    queued_done_.push_back(std::move(done));
    call = NextLocked();
  }
  if (call != nullptr) Start(std::move(call));
}

void SubmitBatcher::Drain() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0 && queued_.empty(); };
  mu_.Await(absl::Condition(&idle));
}

std::unique_ptr<SubmitBatcher::Call> SubmitBatcher::NextLocked() {
  if (queued_.empty() || in_flight_ >= max_in_flight_) return nullptr;
  auto call = std::make_unique<Call>();
  size_t n = 0, bytes = 0;
  while (n < queued_.size() && n < max_batch_) {
    bytes += queued_[n].ByteSizeLong();
    if (n > 0 && bytes > max_batch_bytes_) break;
    ++n;
  }
  call->request.mutable_specs()->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) *call->request.add_specs() = std::move(queued_[i]);
  call->dones.assign(std::make_move_iterator(queued_done_.begin()),
                     std::make_move_iterator(queued_done_.begin() + static_cast<std::ptrdiff_t>(n)));
  queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
  queued_done_.erase(queued_done_.begin(), queued_done_.begin() + static_cast<std::ptrdiff_t>(n));
  ++in_flight_;
  return call;
}

void SubmitBatcher::Start(std::unique_ptr<Call> call) {
  call->ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(rpc_timeout_));
  if (!authorization_.empty()) call->ctx.AddMetadata("authorization", authorization_);
  Call* raw = call.release();
  stub_->async()->SubmitBatch(&raw->ctx, &raw->request, &raw->response,
                              [self = shared_from_this(), raw](grpc::Status s) { self->Finished(raw, s); });
}

void SubmitBatcher::Finished(Call* raw, const grpc::Status& status) {
  std::unique_ptr<Call> call(raw);
  const auto& results = call->response.results();
  if (status.ok() && static_cast<size_t>(results.size()) != call->dones.size()) {
    absl::Status bad = absl::InternalError(
        absl::StrCat("coordinator answered ", results.size(), " of ", call->dones.size(), " submits"));
    for (auto& done : call->dones) done(bad);
  } else if (status.ok()) {
    for (int i = 0; i < results.size(); ++i) {
      const pb::SubmitOutcome& r = results[i];
      if (r.error_code() == 0) {
        call->dones[i](r.accepted());
      } else {
        call->dones[i](absl::Status(static_cast<absl::StatusCode>(r.error_code()), r.error_message()));
      }
    }
  } else {
    absl::Status error = convert_(status);
    for (auto& done : call->dones) done(error);
  }
  std::unique_ptr<Call> next;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    next = NextLocked();
  }
  if (next != nullptr) Start(std::move(next));
}

std::shared_ptr<ResultStream> ResultStream::Start(pb::ClientService::Stub* stub, ConvertFn convert,
                                                 const std::string& authorization) {
  std::shared_ptr<ResultStream> s(new ResultStream(std::move(convert)));
  if (!authorization.empty()) s->ctx_.AddMetadata("authorization", authorization);
  s->self_ = s;
  stub->async()->WaitTasks(&s->ctx_, s.get());
  s->StartRead(&s->response_);
  s->StartCall();
  return s;
}

absl::Status ResultStream::Add(const std::string& task_id, WaitDone* done) {
  absl::MutexLock lock(&mu_);
  if (ended_) return end_status_;
  waits_[task_id].push_back(std::move(*done));
  queued_.add_task_ids(task_id);
  if (!write_on_wire_) WriteLocked();
  return absl::OkStatus();
}

void ResultStream::WriteLocked() {
  writing_ = std::move(queued_);
  queued_.Clear();
  write_on_wire_ = true;
  StartWrite(&writing_);
}

void ResultStream::Shutdown() {
  ctx_.TryCancel();
  done_.WaitForNotification();
}

void ResultStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  write_on_wire_ = false;
  if (ok && queued_.task_ids_size() > 0) WriteLocked();  // !ok: the stream broke; OnDone follows
}

void ResultStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  std::vector<std::pair<WaitDone, absl::StatusOr<pb::Task>>> ready;
  {
    absl::MutexLock lock(&mu_);
    for (pb::Task& t : *response_.mutable_tasks()) {
      auto it = waits_.find(t.task_id());
      if (it == waits_.end()) continue;
      for (size_t i = 0; i < it->second.size(); ++i) {
        ready.emplace_back(std::move(it->second[i]), i + 1 < it->second.size() ? t : std::move(t));
      }
      waits_.erase(it);
    }
    for (const pb::WaitError& e : response_.errors()) {
      auto it = waits_.find(e.task_id());
      if (it == waits_.end()) continue;
      absl::Status s(static_cast<absl::StatusCode>(e.error_code()), e.error_message());
      for (auto& done : it->second) ready.emplace_back(std::move(done), s);
      waits_.erase(it);
    }
  }
  StartRead(&response_);  // the answers above were moved out already
  for (auto& [done, result] : ready) done(std::move(result));
}

void ResultStream::OnDone(const grpc::Status& status) {
  absl::flat_hash_map<std::string, std::vector<WaitDone>> orphans;
  absl::Status error = status.ok() ? absl::InternalError("the coordinator ended the wait stream") : convert_(status);
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    end_status_ = error;
    orphans = std::move(waits_);
  }
  for (auto& [id, dones] : orphans) {
    for (auto& done : dones) done(error);
  }
  done_.Notify();
  auto last = std::move(self_);  // may destroy this object on return
}

}  // namespace rc::client::internal
