#include "worker/worker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/capability_probe.h"
#include "worker/opt_in_handlers.h"

namespace rc::worker {

absl::StatusOr<std::unique_ptr<Worker>> Worker::Start(const WorkerConfig& config,
                                                      std::function<void(absl::Status)> on_fatal) {
  std::unique_ptr<Worker> w(new Worker());
  w->config_ = config;
  AddBuiltinHandlers(&w->handlers_);
  if (absl::Status s = AddOptInHandlers(config, &w->handlers_); !s.ok()) return s;
  std::vector<std::string> types = w->handlers_.types();
  w->capabilities_ = ProbeCapabilities(config, types);
  Worker* raw = w.get();
  auto probe = [raw, types] { return ProbeCapabilities(raw->config_, types); };
  w->executor_ = std::make_unique<Executor>(w->capabilities_.slots(), &w->handlers_, &w->outbox_,
                                            [raw] { return raw->capabilities_; });
  w->session_ = std::make_unique<Session>(config, w->executor_.get(), &w->outbox_, probe, std::move(on_fatal));
  w->session_->Start();
  return w;
}

int Worker::Drain(absl::Duration grace) {
  outbox_.RequestDraining();
  outbox_.Wake();
  executor_->WaitIdle(absl::Now() + grace);
  const int handed_back = static_cast<int>(executor_->HeldAttempts().size());
  executor_->Stop();
  outbox_.WaitAcknowledged(absl::Seconds(2));
  session_->Leave(absl::Seconds(2));
  return handed_back;
}

void Worker::Stop() {
  if (session_ != nullptr) session_->Stop();
  if (executor_ != nullptr) executor_->Stop();
}

Worker::~Worker() { Stop(); }

}  // namespace rc::worker
