#pragma once
// The one place absl::Status and grpc::Status convert into each other (STYLE.md rule 6).

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace rc {

grpc::Status ToGrpcStatus(const absl::Status& s);
absl::Status FromGrpcStatus(const grpc::Status& s);

}  // namespace rc
