// The network half of the floor: a few bytes ping-ponged over loopback gRPC with a server
// inside this process, once per unary call and once per message on an open bidi stream.
#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/floor.h"
#include "bench_ping.grpc.pb.h"

namespace rc::bench {
namespace {

namespace bpb = ::retire_cluster::bench::v1;

// Echoes every message of a stream back, one at a time.
class EchoStream : public grpc::ServerBidiReactor<bpb::Ping, bpb::Ping> {
 public:
  EchoStream() { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    out_ = in_;
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    StartRead(&in_);
  }
  void OnDone() override { delete this; }

 private:
  bpb::Ping in_, out_;
};

class PingServer final : public bpb::PingService::CallbackService {
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const bpb::Ping* req, bpb::Ping* resp) override {
    *resp = *req;
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerBidiReactor<bpb::Ping, bpb::Ping>* Stream(grpc::CallbackServerContext*) override {
    return new EchoStream();
  }
};

absl::Status Failed(const char* what, const grpc::Status& s) {
  return absl::UnavailableError(absl::StrCat("loopback ping ", what, ": ", s.error_message()));
}

}  // namespace

absl::StatusOr<NetworkFloor> MeasureLoopback(int samples, int warmup) {
  PingServer service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return absl::UnavailableError("cannot start the loopback ping server");
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
  if (!failed.ok()) return failed;
  return floor;
}

}  // namespace rc::bench
