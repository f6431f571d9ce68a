#include "coordinator/grpc/health_service.h"

#include <algorithm>
#include <optional>

namespace rc::coordinator {
namespace {

namespace hpb = ::grpc::health::v1;

class CheckCall final : public AsyncUnary<hpb::HealthCheckRequest, hpb::HealthCheckResponse> {
 public:
  CheckCall(CallQueue* queue, HealthService* service) : AsyncUnary(queue), service_(service) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestCheck(&ctx_, &request_, &responder_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new CheckCall(queue(), service_); }
  void OnStart() override {
    const HealthService::Status s = service_->StatusOf(request_.service());
    if (s == hpb::HealthCheckResponse::SERVICE_UNKNOWN) {
      return Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + request_.service()));
    }
    response_.set_status(s);
    Finish(grpc::Status::OK);
  }

  HealthService* const service_;
};

// Writes the status now, then each change, latest first: one write in flight.
class WatchCall final : public AsyncWriter<hpb::HealthCheckRequest, hpb::HealthCheckResponse> {
 public:
  WatchCall(CallQueue* queue, HealthService* service)
      : AsyncWriter(queue), service_(service), watcher_(std::make_shared<Link>(this)) {}

 private:
  class Link final : public HealthService::Watcher {
   public:
    explicit Link(WatchCall* call) : call_(call) {}
    void Changed(HealthService::Status s) override {
      absl::MutexLock lock(&mu_);
      pending_ = s;
      PumpLocked();
    }
    void WriteDone(bool ok) {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) call_ = nullptr;  // the call is over: write nothing more
      PumpLocked();
    }
    void Detach() {
      absl::MutexLock lock(&mu_);
      call_ = nullptr;
    }

   private:
    void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (writing_ || call_ == nullptr || !pending_.has_value()) return;
      out_.set_status(*pending_);
      pending_.reset();
      writing_ = true;
      call_->StartWrite(&out_);
    }

    absl::Mutex mu_;
    WatchCall* call_ ABSL_GUARDED_BY(mu_);
    std::optional<HealthService::Status> pending_ ABSL_GUARDED_BY(mu_);
    hpb::HealthCheckResponse out_ ABSL_GUARDED_BY(mu_);
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
  };

  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestWatch(&ctx_, &request_, &stream_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new WatchCall(queue(), service_); }
  void OnStart() override { watcher_->Changed(service_->AddWatcher(request_.service(), watcher_)); }
  void OnWriteDone(bool ok) override { watcher_->WriteDone(ok); }
  // The stream stays open until the client goes or the server stops.
  void OnDone() override {
    watcher_->Detach();
    service_->RemoveWatcher(watcher_);
  }

  HealthService* const service_;
  const std::shared_ptr<Link> watcher_;
};

}  // namespace

HealthService::HealthService(std::vector<std::string> services) : services_(services.begin(), services.end()) {}

void HealthService::Listen(CallQueue* queue) {
  (new CheckCall(queue, this))->Listen();
  (new WatchCall(queue, this))->Listen();
}

HealthService::Status HealthService::StatusOf(const std::string& service) const {
  if (!service.empty() && !services_.contains(service)) return grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN;
  absl::MutexLock lock(&mu_);
  return serving_ ? grpc::health::v1::HealthCheckResponse::SERVING : grpc::health::v1::HealthCheckResponse::NOT_SERVING;
}

HealthService::Status HealthService::AddWatcher(const std::string& service, std::shared_ptr<Watcher> w) {
  const Status now = StatusOf(service);
  if (now == grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN) return now;  // never changes
  absl::MutexLock lock(&mu_);
  watchers_.push_back(std::move(w));
  return serving_ ? now : grpc::health::v1::HealthCheckResponse::NOT_SERVING;
}

void HealthService::RemoveWatcher(const std::shared_ptr<Watcher>& w) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
}

void HealthService::ShuttingDown() {
  std::vector<std::shared_ptr<Watcher>> told;
  {
    absl::MutexLock lock(&mu_);
    serving_ = false;
    told = watchers_;
  }
  for (auto& w : told) w->Changed(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

}  // namespace rc::coordinator
