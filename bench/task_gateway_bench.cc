// What the worker's task gateway (worker/gateway/) adds to a call: sequential unary
// GetTask calls to a trivial ClientService on 127.0.0.1, made directly and through an
// attempt's Unix socket (task -> socket -> gateway -> TCP -> coordinator), plus a
// WatchTask stream of one message each way. Prints microseconds per call (mean and
// median of the rounds) and the difference.
// usage: retire-cluster-gateway-bench [--calls N] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "retire_cluster/v1/client_service.grpc.pb.h"
#include "worker/gateway/task_gateway.h"

namespace pb = ::retire_cluster::v1;

namespace {

class Trivial final : public pb::ClientService::Service {
  grpc::Status GetTask(grpc::ServerContext*, const pb::GetTaskRequest* req, pb::Task* out) override {
    out->set_task_id(req->task_id());
    return grpc::Status::OK;
  }
  grpc::Status WatchTask(grpc::ServerContext*, const pb::GetTaskRequest* req, grpc::ServerWriter<pb::Task>* w) override {
    pb::Task t;
    t.set_task_id(req->task_id());
    t.set_status(pb::TASK_STATUS_SUCCESS);
    w->Write(t);
    return grpc::Status::OK;
  }
};

// Microseconds per call, `calls` sequential calls of `kind` on `stub`.
double Time(pb::ClientService::Stub* stub, int calls, bool stream) {
  pb::GetTaskRequest req;
  req.set_task_id("task-0123456789abcdef");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext ctx;
    pb::Task t;
    if (stream) {
      auto r = stub->WatchTask(&ctx, req);
      while (r->Read(&t)) {
      }
      if (!r->Finish().ok()) std::abort();
    } else if (!stub->GetTask(&ctx, req, &t).ok()) {
      std::abort();
    }
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / calls;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 2000, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  Trivial service;
  int port = 0;
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  const std::string dir = (std::filesystem::temp_directory_path() / rc::NewId("rc-gw-bench")).string();
  std::filesystem::create_directories(dir);
  auto upstream = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto gateway = rc::worker::TaskGateway::Start(upstream, dir, nullptr);
  if (!gateway.ok()) {
    std::fprintf(stderr, "%s\n", std::string(gateway.status().message()).c_str());
    return 1;
  }
  pb::Assignment a;
  a.set_task_id("task-0123456789abcdef");
  a.set_attempt(1);
  a.set_task_token("rct1.task-0123456789abcdef.1.00");
  auto socket = (*gateway)->Open(a, dir);
  if (!socket.ok() || *socket == nullptr) return 1;
  auto direct = pb::ClientService::NewStub(upstream);
  auto proxied = pb::ClientService::NewStub(grpc::CreateChannel("unix:" + (*socket)->path(),
                                                                grpc::InsecureChannelCredentials()));
  Time(direct.get(), 200, false);  // warm up both paths
  Time(proxied.get(), 200, false);
  for (bool stream : {false, true}) {
    std::vector<double> d, p;
    for (int r = 0; r < rounds; ++r) {
      d.push_back(Time(direct.get(), calls, stream));
      p.push_back(Time(proxied.get(), calls, stream));
    }
    std::printf("%s: direct %.1f us/call, through the task socket %.1f us/call, overhead %.1f us (median of %d x %d)\n",
                stream ? "WatchTask (1 message)" : "GetTask", Median(d), Median(p), Median(p) - Median(d), rounds,
                calls);
  }
  socket->reset();
  gateway->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
