#include "worker/session/session.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "spdlog/spdlog.h"
#include "worker/capability_probe.h"

namespace rc::worker {

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const WorkerConfig& config,
                                                      std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Our own backoff decides when to retry; keep gRPC's reconnect short.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A task may carry up to 32 MiB (max_payload_bytes); gRPC's default is 4 MiB.
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(config.join, std::move(credentials), args);
}

std::string CallbackBaseFor(const std::string& join, int http_port, bool http_tls) {
  if (http_port <= 0) return "";
  absl::string_view target = join;
  // gRPC target forms: "dns:[//AUTHORITY/]HOST:PORT", "ipv4:ADDR:PORT", "ipv6:[ADDR]:PORT".
  if (absl::ConsumePrefix(&target, "dns:") && absl::ConsumePrefix(&target, "//")) {
    const size_t slash = target.find('/');
    target = slash == absl::string_view::npos ? absl::string_view() : target.substr(slash + 1);
  }
  if (!absl::ConsumePrefix(&target, "ipv4:")) absl::ConsumePrefix(&target, "ipv6:");
  const size_t colon = target.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return "";
  const absl::string_view host = target.substr(0, colon);
  const bool bare_v6 = host.find(':') != absl::string_view::npos && host.front() != '[';
  return absl::StrCat(http_tls ? "https" : "http", "://", bare_v6 ? "[" : "", host, bare_v6 ? "]" : "", ":",
                      http_port);
}

Session::Session(const WorkerConfig& config, std::shared_ptr<grpc::ChannelCredentials> credentials,
                 Executor* executor, Outbox* outbox, std::function<pb::Capabilities()> probe,
                 std::function<void(absl::Status)> on_fatal, const Clock* clock)
    : Session(config, MakeCoordinatorChannel(config, std::move(credentials)), executor, outbox, std::move(probe),
              std::move(on_fatal), clock) {}

Session::Session(const WorkerConfig& config, std::shared_ptr<grpc::Channel> channel, Executor* executor,
                 Outbox* outbox, std::function<pb::Capabilities()> probe, std::function<void(absl::Status)> on_fatal,
                 const Clock* clock)
    : config_(config),
      channel_(std::move(channel)),
      executor_(executor),
      outbox_(outbox),
      probe_(std::move(probe)),
      on_fatal_(std::move(on_fatal)),
      clock_(clock) {}

Session::~Session() { Stop(); }

void Session::Start() {
  absl::MutexLock lock(&join_mu_);
  thread_ = std::thread([this] { Run(); });
}

void Session::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  outbox_->Wake();
  absl::MutexLock lock(&join_mu_);  // Stop may race with itself (drain vs. a second signal)
  if (thread_.joinable()) thread_.join();
}

void Session::Leave(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    leaving_ = true;
  }
  outbox_->RequestDeregister();
  {
    absl::MutexLock lock(&mu_);
    auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !connected_; };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&gone), clock_->Now() + timeout);
  }
  Stop();
}

bool Session::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

void Session::Run() {
  auto stub = pb::WorkerService::NewStub(channel_);
  std::mt19937_64 rng(std::random_device{}());
  ReconnectBackoff backoff(config_.reconnect_initial, config_.reconnect_max);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  while (true) {
    Outcome outcome = ConnectOnce(stub.get());
    if (outcome == Outcome::kReplaced) {
      absl::Status why = absl::AlreadyExistsError(absl::StrCat(
          "another worker registered with device id '", config_.device_id.empty() ? "(hostname)" : config_.device_id,
          "' and replaced this one; give each worker its own --device-id"));
      spdlog::error("{}", std::string(why.message()));
      if (on_fatal_) on_fatal_(why);
      return;
    }
    if (outcome == Outcome::kRefused) {
      // Retrying cannot help: the coordinator's token list is read at its start.
      absl::Status why = absl::UnauthenticatedError(
          absl::StrCat("the coordinator at ", config_.join, " refused this worker: ", refusal_));
      spdlog::error("{}", std::string(why.message()));
      if (on_fatal_) on_fatal_(why);
      return;
    }
    if (outcome == Outcome::kRegistered) backoff.Reset();
    absl::MutexLock lock(&mu_);
    if (stopping_ || leaving_) return;
    const absl::Duration wait = backoff.Next(jitter(rng));
    spdlog::info("reconnecting to {} in {:.1f}s", config_.join, absl::ToDoubleSeconds(wait));
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&stopping_), clock_->Now() + wait);
    if (stopping_) return;
  }
}

Session::Outcome Session::ConnectOnce(pb::WorkerService::Stub* stub) {
  grpc::ClientContext context;
  if (!config_.token.empty()) context.AddMetadata("authorization", "Bearer " + config_.token);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return Outcome::kFailed;
    context_ = &context;
  }
  auto stream = stub->Connect(&context);

  pb::WorkerMessage hello;
  pb::Register* reg = hello.mutable_register_();
  *reg->mutable_capabilities() = probe_();
  // Results not yet acknowledged (finished while disconnected, or lost with the old
  // stream) ride along; their attempts count as held until then.
  outbox_->ResendInFlight();
  for (auto& a : executor_->HeldAttempts()) *reg->add_running() = std::move(a);
  for (auto& a : outbox_->Unacknowledged()) *reg->add_running() = std::move(a);
  // Level-triggered: the coordinator learns the waiting set afresh with every register.
  for (auto& a : executor_->WaitingAttempts()) *reg->add_waiting() = std::move(a);
  outbox_->Take(&hello);

  bool registered = false;
  pb::CoordinatorMessage in;
  if (stream->Write(hello) && stream->Read(&in) && in.has_registered()) {
    registered = true;
    absl::Duration heartbeat = in.registered().heartbeat_interval_ms() > 0
                                   ? absl::Milliseconds(in.registered().heartbeat_interval_ms())
                                   : config_.heartbeat_interval;
    // Lent slots are bounded by the coordinator's depth limit (0 from an older one: none).
    executor_->SetMaxTaskDepth(in.registered().max_task_depth());
    // Where this connection's tasks call back to complete themselves (RC_CALLBACK_URL).
    executor_->SetCallbackBase(CallbackBaseFor(config_.join, in.registered().http_port(), in.registered().http_tls()));
    spdlog::info("joined {} as {} ({} slots, types {})", config_.join, reg->capabilities().device_id(),
                 reg->capabilities().slots(), absl::StrJoin(reg->capabilities().task_types(), ","));
    {
      absl::MutexLock lock(&mu_);
      connected_ = true;
    }
    absl::Notification writer_done;
    std::thread writer([&] { WriteLoop(stream.get(), heartbeat, &writer_done); });
    do {
      outbox_->Hold();
      for (const pb::Assignment& a : in.assignments()) executor_->Assign(a);
      for (const pb::CancelAttempt& c : in.cancels()) executor_->Cancel(c.task_id(), c.attempt());
      for (const pb::RunningAttempt& a : in.finished_acks()) outbox_->Ack(a.task_id(), a.attempt());
      for (const pb::CompleteAttempt& c : in.completions()) DeliverCompletion(c);
      in.Clear();
      // Results of instant tasks go out from here; the writer thread sleeps on.
      bool written = true;
      {
        absl::MutexLock lock(&write_mu_);
        pb::WorkerMessage out;
        if (outbox_->ReleaseAndTake(&out)) written = stream->Write(out);
      }
      if (!written) break;  // the stream broke; what was taken is resent on reconnect
    } while (stream->Read(&in));
    writer_done.Notify();
    outbox_->Wake();
    writer.join();
    absl::MutexLock lock(&mu_);
    connected_ = false;
  }
  grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    if (stopping_) return Outcome::kFailed;
  }
  // The coordinator ends a stream with ABORTED only when a newer connection of the
  // same device id replaced it; this process never opens two, so another one did.
  if (registered && status.error_code() == grpc::StatusCode::ABORTED) return Outcome::kReplaced;
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    refusal_ = status.error_message();
    return Outcome::kRefused;
  }
  spdlog::warn("stream to {} ended: {} ({})", config_.join, status.error_message().empty() ? "closed" : status.error_message(),
               static_cast<int>(status.error_code()));
  return registered ? Outcome::kRegistered : Outcome::kFailed;
}

void Session::DeliverCompletion(const pb::CompleteAttempt& c) {
  ExternalCompletion completion;
  completion.status = c.status();
  completion.result = c.result().empty() ? "{}" : c.result();
  completion.error_message = c.error_message();
  executor_->Complete(c.task_id(), c.attempt(), std::move(completion));
}

void Session::WriteLoop(grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>* stream,
                        absl::Duration heartbeat, absl::Notification* done) {
  absl::Time next_heartbeat = clock_->Now() + heartbeat;
  while (!done->HasBeenNotified()) {
    outbox_->Wait(next_heartbeat);
    if (done->HasBeenNotified()) return;
    // Taken and written under one lock, so messages leave in the order events happened
    // even when the reader thread sends some itself.
    absl::MutexLock lock(&write_mu_);
    pb::WorkerMessage msg;
    outbox_->Take(&msg);
    if (clock_->Now() >= next_heartbeat) {
      pb::Heartbeat* hb = msg.mutable_heartbeat();
      hb->set_running(executor_->running());
      hb->set_load_average(ReadLoad().load1);
      next_heartbeat = clock_->Now() + heartbeat;
    }
    if (msg.ByteSizeLong() == 0) continue;
    if (!stream->Write(msg)) return;  // what was taken is resent on the next connection
  }
}

}  // namespace rc::worker
