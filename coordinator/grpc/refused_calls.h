#pragma once
// Reactors that end a streaming call at once with an error (a refused token): the
// callback API needs a reactor object even for a call that never reads or writes.

#include "absl/status/status.h"
#include "common/grpc_status.h"
#include "grpcpp/support/server_callback.h"

namespace rc::coordinator {

template <typename Request, typename Response>
class RefusedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidi(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

template <typename Response>
class RefusedWriter final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWriter(const absl::Status& s) { this->Finish(ToGrpcStatus(s)); }
  void OnDone() override { delete this; }
};

}  // namespace rc::coordinator
