// The coordinator serves standard gRPC health checking and server reflection.
#include <catch2/catch.hpp>

#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
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

namespace hpb = ::grpc::health::v1;

hpb::HealthCheckRequest For(const std::string& service) {
  hpb::HealthCheckRequest r;
  r.set_service(service);
  return r;
}

TEST_CASE("gRPC health checking: the services served, and NOT_FOUND for any other name") {
  Cluster cluster;
  auto stub = hpb::Health::NewStub(grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials()));
  for (const char* name : {"retire_cluster.v1.ClientService", "retire_cluster.v1.WorkerService"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hpb::HealthCheckResponse resp;
    REQUIRE(stub->Check(&ctx, For(name), &resp).ok());
    CHECK(resp.status() == hpb::HealthCheckResponse::SERVING);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  hpb::HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, For("no.such.Service"), &resp);
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.error_message().find("no.such.Service") != std::string::npos);
}

TEST_CASE("gRPC health Watch: SERVING, then NOT_SERVING as the coordinator shuts down") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.store = "memory";
  absl::StatusOr<std::unique_ptr<coordinator::CoordinatorServer>> server = coordinator::CoordinatorServer::Start(config);
  REQUIRE(server.ok());
  auto stub = hpb::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto unknown = stub->Watch(&ctx, For("no.such.Service"));
    hpb::HealthCheckResponse resp;
    REQUIRE(unknown->Read(&resp));
    CHECK(resp.status() == hpb::HealthCheckResponse::SERVICE_UNKNOWN);
    ctx.TryCancel();
    unknown->Finish().IgnoreError();
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto watch = stub->Watch(&ctx, For(""));
  hpb::HealthCheckResponse resp;
  REQUIRE(watch->Read(&resp));
  CHECK(resp.status() == hpb::HealthCheckResponse::SERVING);
  std::thread stop([&] { (*server)->Shutdown(); });
  const bool told = watch->Read(&resp);  // no REQUIRE before the join
  CHECK(told);
  CHECK((told && resp.status() == hpb::HealthCheckResponse::NOT_SERVING));
  if (told) CHECK_FALSE(watch->Read(&resp));  // the server ends the stream as it stops
  CHECK_FALSE(watch->Finish().ok());
  stop.join();
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
