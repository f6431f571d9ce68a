#pragma once
// gRPC server reflection v1 (proto/grpc/reflection/v1/reflection.proto), which newer
// grpcurl and other clients try before v1alpha. grpc 1.51's reflection library serves
// only v1alpha, so this answers v1 beside it from protobuf's generated descriptor pool:
// every .proto compiled into the coordinator. The design assumption: the services the
// server registers are fixed when it starts, so the list is given once, up front.

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace rc::coordinator {

class ReflectionV1Service final : public ::grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: the fully qualified names list_services answers.
  explicit ReflectionV1Service(std::vector<std::string> services);

  // Answers each request on the stream in order until the client ends it. A question
  // that cannot be answered gets an error_response (NOT_FOUND for an unknown file,
  // symbol, type or extension; INVALID_ARGUMENT for an empty request); the stream goes on.
  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<::grpc::reflection::v1::ServerReflectionResponse,
                               ::grpc::reflection::v1::ServerReflectionRequest>* stream) override;

 private:
  const std::vector<std::string> services_;  // sorted
};

}  // namespace rc::coordinator
