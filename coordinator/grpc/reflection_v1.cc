#include "coordinator/grpc/reflection_v1.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace rc::coordinator {
namespace {

namespace refl = ::grpc::reflection::v1;
using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

void Error(refl::ServerReflectionResponse* out, grpc::StatusCode code, std::string message) {
  refl::ErrorResponse* e = out->mutable_error_response();
  e->set_error_code(static_cast<int32_t>(code));
  e->set_error_message(std::move(message));
}

// `file` first, then what it imports (depth first) that `sent` does not hold yet. The
// file itself is always sent: a client asking again gets an answer, not an empty list.
void AddFile(const FileDescriptor* file, std::set<std::string>* sent, refl::FileDescriptorResponse* out) {
  auto add = [&](const FileDescriptor* f) {
    google::protobuf::FileDescriptorProto proto;  // fresh: CopyTo appends, it does not clear
    f->CopyTo(&proto);
    out->add_file_descriptor_proto(proto.SerializeAsString());
  };
  add(file);
  sent->insert(file->name());
  std::vector<const FileDescriptor*> pending;
  for (int i = file->dependency_count() - 1; i >= 0; --i) pending.push_back(file->dependency(i));
  while (!pending.empty()) {
    const FileDescriptor* dep = pending.back();
    pending.pop_back();
    if (!sent->insert(dep->name()).second) continue;
    add(dep);
    for (int i = dep->dependency_count() - 1; i >= 0; --i) pending.push_back(dep->dependency(i));
  }
}

}  // namespace

ReflectionV1Service::ReflectionV1Service(std::vector<std::string> services) : services_([&] {
  std::sort(services.begin(), services.end());
  return std::move(services);
}()) {}

grpc::Status ReflectionV1Service::ServerReflectionInfo(
    grpc::ServerContext* /*ctx*/,
    grpc::ServerReaderWriter<refl::ServerReflectionResponse, refl::ServerReflectionRequest>* stream) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  std::set<std::string> sent;  // files sent on this stream
  refl::ServerReflectionRequest req;
  while (stream->Read(&req)) {
    refl::ServerReflectionResponse out;
    out.set_valid_host(req.host());
    *out.mutable_original_request() = req;
    switch (req.message_request_case()) {
      case refl::ServerReflectionRequest::kListServices:
        for (const std::string& name : services_) out.mutable_list_services_response()->add_service()->set_name(name);
        break;
      case refl::ServerReflectionRequest::kFileByFilename: {
        const FileDescriptor* file = pool->FindFileByName(req.file_by_filename());
        if (file == nullptr) {
          Error(&out, grpc::StatusCode::NOT_FOUND, absl::StrCat("no file named '", req.file_by_filename(), "'"));
        } else {
          AddFile(file, &sent, out.mutable_file_descriptor_response());
        }
        break;
      }
      case refl::ServerReflectionRequest::kFileContainingSymbol: {
        const FileDescriptor* file = pool->FindFileContainingSymbol(req.file_containing_symbol());
        if (file == nullptr) {
          Error(&out, grpc::StatusCode::NOT_FOUND, absl::StrCat("no symbol '", req.file_containing_symbol(), "'"));
        } else {
          AddFile(file, &sent, out.mutable_file_descriptor_response());
        }
        break;
      }
      case refl::ServerReflectionRequest::kFileContainingExtension: {
        const refl::ExtensionRequest& ext = req.file_containing_extension();
        const Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
        const FieldDescriptor* field =
            type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
        if (type == nullptr) {
          Error(&out, grpc::StatusCode::NOT_FOUND, absl::StrCat("no message type '", ext.containing_type(), "'"));
        } else if (field == nullptr) {
          Error(&out, grpc::StatusCode::NOT_FOUND,
                absl::StrCat("no extension ", ext.extension_number(), " of '", ext.containing_type(), "'"));
        } else {
          AddFile(field->file(), &sent, out.mutable_file_descriptor_response());
        }
        break;
      }
      case refl::ServerReflectionRequest::kAllExtensionNumbersOfType: {
        const Descriptor* type = pool->FindMessageTypeByName(req.all_extension_numbers_of_type());
        if (type == nullptr) {
          Error(&out, grpc::StatusCode::NOT_FOUND,
                absl::StrCat("no message type '", req.all_extension_numbers_of_type(), "'"));
          break;
        }
        // Extensions compiled into the coordinator; none of its own protos declare any.
        std::vector<const FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        refl::ExtensionNumberResponse* numbers = out.mutable_all_extension_numbers_response();
        numbers->set_base_type_name(type->full_name());
        for (const FieldDescriptor* f : extensions) numbers->add_extension_number(f->number());
        break;
      }
      case refl::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
        Error(&out, grpc::StatusCode::INVALID_ARGUMENT, "the request asks nothing (no message_request set)");
        break;
    }
    if (!stream->Write(out)) break;  // the client went away
  }
  return grpc::Status::OK;
}

}  // namespace rc::coordinator
