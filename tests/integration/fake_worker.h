#pragma once
// A worker made of one WorkerService stream, for tests that need what a real worker is
// given (an Assignment, with its task token) and to end attempts at a chosen moment.
// Every read is bounded by the stream's deadline.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "grpcpp/create_channel.h"
#include "retire_cluster/v1/worker_service.grpc.pb.h"

namespace rc::testing {

namespace pb = ::retire_cluster::v1;

class FakeWorker {
 public:
  // Connects and registers `device` with one slot for `task_type`.
  FakeWorker(const std::string& address, const std::string& device, const std::string& task_type)
      : device_(device), stub_(pb::WorkerService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Connect(&ctx_);
    pb::WorkerMessage hello;
    pb::Capabilities* c = hello.mutable_register_()->mutable_capabilities();
    c->set_device_id(device);
    c->set_slots(1);
    c->set_platform("linux");
    c->set_cpu_cores(1);
    c->add_task_types(task_type);
    stream_->Write(hello);
  }
  ~FakeWorker() {
    ctx_.TryCancel();
    stream_->Finish();
  }

  // The next assignment (nullopt when the stream ends first, or at its deadline).
  std::optional<pb::Assignment> NextAssignment() {
    pb::CoordinatorMessage m;
    while (stream_->Read(&m)) {
      if (m.assignments_size() > 0) return m.assignments(0);
    }
    return std::nullopt;
  }

  // Reports the attempt started, then ended with `status`.
  void Finish(const pb::Assignment& a, pb::TaskStatus status = pb::TASK_STATUS_SUCCESS) {
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(a.task_id());
    s->set_attempt(a.attempt());
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(a.task_id());
    f->set_attempt(a.attempt());
    f->set_status(status);
    f->set_result("{}");
    stream_->Write(m);
  }

 private:
  const std::string device_;
  std::unique_ptr<pb::WorkerService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>> stream_;
};

}  // namespace rc::testing
