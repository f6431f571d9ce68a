// The coordinator serves standard gRPC health checking and server reflection.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "grpc_test/health.grpc.pb.h"
#include "grpc_test/reflection.pb.h"
#include "grpcpp/impl/codegen/client_callback.h"
#include "grpcpp/support/sync_stream.h"
#include "grpcpp/create_channel.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {

TEST_CASE("gRPC health checking answers SERVING") {
  Cluster cluster;
  auto channel = grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
  REQUIRE(s.ok());
  CHECK(resp.status() == grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_CASE("gRPC server reflection lists the services (what grpcurl list does)") {
  Cluster cluster;
  auto channel = grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                         grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  std::unique_ptr<grpc::ClientReaderWriter<rc_test::reflection::ServerReflectionRequest,
                                           rc_test::reflection::ServerReflectionResponse>>
      stream(grpc::internal::ClientReaderWriterFactory<rc_test::reflection::ServerReflectionRequest,
                                                       rc_test::reflection::ServerReflectionResponse>::Create(
          channel.get(), method, &ctx));
  rc_test::reflection::ServerReflectionRequest req;
  req.set_list_services("");
  REQUIRE(stream->Write(req));
  stream->WritesDone();
  rc_test::reflection::ServerReflectionResponse resp;
  REQUIRE(stream->Read(&resp));
  std::set<std::string> names;
  for (const auto& svc : resp.list_services_response().service()) names.insert(svc.name());
  CHECK(names.count("retire_cluster.v1.ClientService") == 1);
  CHECK(names.count("retire_cluster.v1.WorkerService") == 1);
  CHECK(names.count("grpc.health.v1.Health") == 1);
  CHECK(stream->Finish().ok());
}

}  // namespace rc::testing
