// The network half of the floor: a few bytes ping-ponged over loopback gRPC with a server
// inside this process, once per unary call and once per message on an open bidi stream.
#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/floor.h"
#include "coordinator/grpc/async_call.h"
#include "bench_ping.grpc.pb.h"

namespace rc::bench {
namespace {

namespace bpb = ::retire_cluster::bench::v1;

// The server runs on the coordinator's call machinery (coordinator/grpc/async_call.h: one
// completion queue, one thread), so the floor is what the coordinator's own transport can
// reach. Until issue 18's eighth session it was a callback-API server, as the coordinator
// was then: 35-45 us slower per round trip here.
class EchoUnary final : public coordinator::AsyncUnary<bpb::Ping, bpb::Ping> {
 public:
  EchoUnary(coordinator::CallQueue* queue, bpb::PingService::AsyncService* service)
      : AsyncUnary(queue), service_(service) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestUnary(&ctx_, &request_, &responder_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new EchoUnary(queue(), service_); }
  void OnStart() override {
    response_ = request_;
    Finish(grpc::Status::OK);
  }

  bpb::PingService::AsyncService* const service_;
};

// Echoes every message of a stream back, one at a time.
class EchoStream final : public coordinator::AsyncBidi<bpb::Ping, bpb::Ping> {
 public:
  EchoStream(coordinator::CallQueue* queue, bpb::PingService::AsyncService* service)
      : AsyncBidi(queue), service_(service) {}

 private:
  void Request(grpc::ServerCompletionQueue* cq, void* tag) override {
    service_->RequestStream(&ctx_, &stream_, cq, cq, tag);
  }
  AsyncCall* Another() const override { return new EchoStream(queue(), service_); }
  void OnStart() override { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    out_ = in_;
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    StartRead(&in_);
  }

  bpb::PingService::AsyncService* const service_;
  bpb::Ping in_, out_;
};

absl::Status Failed(const char* what, const grpc::Status& s) {
  return absl::UnavailableError(absl::StrCat("loopback ping ", what, ": ", s.error_message()));
}

}  // namespace

absl::StatusOr<NetworkFloor> MeasureLoopback(int samples, int warmup) {
  bpb::PingService::AsyncService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  // Declared before the server: shut down (and destroyed) after it.
  std::unique_ptr<coordinator::CallQueue> calls;
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  calls = std::make_unique<coordinator::CallQueue>(std::move(cq));
  if (server == nullptr || port == 0) return absl::UnavailableError("cannot start the loopback ping server");
  (new EchoUnary(calls.get(), &service))->Listen();
  (new EchoStream(calls.get(), &service))->Listen();
  calls->Run();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = bpb::PingService::NewStub(channel);
  NetworkFloor floor;
  absl::Status failed;
  bpb::Ping ping, pong;
  ping.set_data("ping-pong-16bytes");
  {
    std::vector<double> ms;
    for (int i = 0; i < warmup + samples && failed.ok(); ++i) {
      grpc::ClientContext ctx;
      const absl::Time t0 = absl::Now();
      grpc::Status s = stub->Unary(&ctx, ping, &pong);
      if (!s.ok()) failed = Failed("unary", s);
      if (i >= warmup) ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    floor.unary_ms = QuantilesOf(ms);
  }
  if (failed.ok()) {
    grpc::ClientContext ctx;
    auto stream = stub->Stream(&ctx);
    std::vector<double> ms;
    for (int i = 0; i < warmup + samples; ++i) {
      const absl::Time t0 = absl::Now();
      if (!stream->Write(ping) || !stream->Read(&pong)) {
        failed = absl::UnavailableError("loopback ping stream ended early");
        break;
      }
      if (i >= warmup) ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    stream->WritesDone();
    grpc::Status s = stream->Finish();
    if (failed.ok() && !s.ok()) failed = Failed("stream", s);
    floor.stream_ms = QuantilesOf(ms);
  }
  if (failed.ok() && pong.data() != ping.data()) failed = absl::DataLossError("loopback ping: reply is not the message");
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  calls->Shutdown();
  if (!failed.ok()) return failed;
  return floor;
}

}  // namespace rc::bench
