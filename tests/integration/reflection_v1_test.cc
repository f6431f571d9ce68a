// gRPC server reflection v1 (what newer grpcurl asks first), with a real gRPC client
// on the standard method path: services listed, and the files it answers describe the
// API completely enough to build a descriptor pool from them alone.
#include <catch2/catch.hpp>

#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

namespace refl = ::grpc::reflection::v1;
using Stream = grpc::ClientReaderWriter<refl::ServerReflectionRequest, refl::ServerReflectionResponse>;

refl::ServerReflectionResponse Ask(Stream* stream, const refl::ServerReflectionRequest& req) {
  REQUIRE(stream->Write(req));
  refl::ServerReflectionResponse resp;
  REQUIRE(stream->Read(&resp));
  return resp;
}

}  // namespace

TEST_CASE("gRPC reflection v1 lists the services and serves files that describe them") {
  Cluster cluster;
  auto channel = grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials());
  auto stub = refl::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<Stream> stream = stub->ServerReflectionInfo(&ctx);

  refl::ServerReflectionRequest req;
  req.set_host("h");
  req.set_list_services("");
  refl::ServerReflectionResponse resp = Ask(stream.get(), req);
  CHECK(resp.valid_host() == "h");
  CHECK(resp.original_request().has_list_services());
  std::set<std::string> names;
  for (const auto& svc : resp.list_services_response().service()) names.insert(svc.name());
  CHECK(names.count("retire_cluster.v1.ClientService") == 1);
  CHECK(names.count("retire_cluster.v1.WorkerService") == 1);
  CHECK(names.count("grpc.reflection.v1.ServerReflection") == 1);
  CHECK(names.count("grpc.reflection.v1alpha.ServerReflection") == 1);

  // The file for a symbol, with its imports: enough for a pool of its own.
  req.set_file_containing_symbol("retire_cluster.v1.ClientService");
  resp = Ask(stream.get(), req);
  REQUIRE(resp.has_file_descriptor_response());
  REQUIRE(resp.file_descriptor_response().file_descriptor_proto_size() >= 2);
  google::protobuf::SimpleDescriptorDatabase db;
  std::set<std::string> files;
  for (const std::string& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    REQUIRE(file.ParseFromString(bytes));
    files.insert(file.name());
    REQUIRE(db.Add(file));
  }
  google::protobuf::FileDescriptorProto first;
  REQUIRE(first.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  CHECK(first.name() == "retire_cluster/v1/client_service.proto");
  CHECK(files.count("retire_cluster/v1/task.proto") == 1);
  google::protobuf::DescriptorPool pool(&db);
  const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName("retire_cluster.v1.ClientService");
  REQUIRE(service != nullptr);
  const google::protobuf::MethodDescriptor* submit = service->FindMethodByName("Submit");
  REQUIRE(submit != nullptr);
  CHECK(submit->input_type()->FindFieldByName("spec") != nullptr);

  // Asked again on the same stream, the file itself comes again (imports already sent do not).
  resp = Ask(stream.get(), req);
  REQUIRE(resp.file_descriptor_response().file_descriptor_proto_size() == 1);

  req.set_file_by_filename("retire_cluster/v1/task.proto");
  resp = Ask(stream.get(), req);
  REQUIRE(resp.file_descriptor_response().file_descriptor_proto_size() >= 1);
  REQUIRE(first.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  CHECK(first.name() == "retire_cluster/v1/task.proto");

  req.set_all_extension_numbers_of_type("retire_cluster.v1.Task");
  resp = Ask(stream.get(), req);
  CHECK(resp.all_extension_numbers_response().base_type_name() == "retire_cluster.v1.Task");
  CHECK(resp.all_extension_numbers_response().extension_number_size() == 0);  // our protos declare none

  // Unknown names are answered with NOT_FOUND, and the stream goes on.
  req.set_file_containing_symbol("retire_cluster.v1.NoSuchThing");
  resp = Ask(stream.get(), req);
  CHECK(resp.error_response().error_code() == static_cast<int>(grpc::StatusCode::NOT_FOUND));
  CHECK(resp.error_response().error_message() == "no symbol 'retire_cluster.v1.NoSuchThing'");
  req.mutable_file_containing_extension()->set_containing_type("retire_cluster.v1.Task");
  req.mutable_file_containing_extension()->set_extension_number(1000);
  resp = Ask(stream.get(), req);
  CHECK(resp.error_response().error_code() == static_cast<int>(grpc::StatusCode::NOT_FOUND));
  req.set_file_by_filename("nope.proto");
  resp = Ask(stream.get(), req);
  CHECK(resp.error_response().error_code() == static_cast<int>(grpc::StatusCode::NOT_FOUND));

  stream->WritesDone();
  CHECK(stream->Finish().ok());
}

}  // namespace rc::testing
