// A whole HTTP request, as a client of the bridge sends it: cpp-httplib's request parser
// (request line, headers, chunked bodies, query strings, path decoding) hands it to
// routes that parse it the way coordinator/http_bridge.cc does (the bridge's handlers are
// private to it and need a running coordinator, so these routes call the same public
// parsers in the same order: the body as JSON, TaskSpecFromJson for POST /tasks and each
// element of POST /tasks/batch, ParseStatus and absl's number parsers for query values),
// and reply the way it does, echoing what the client sent.
// Invariants beyond "no crash": no exception escapes a route or the error handler (the
// bridge's error handler runs outside httplib's try, where an exception ends the
// process); every reply body is one JSON object; a refused body gets a 4xx.
#include <cstdint>
#include <cstring>
#include <string>

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_view.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"
#include "fuzz/fuzz_check.h"

namespace {

using nlohmann::json;
using rc::Json;

constexpr size_t kMaxBody = 2 << 20;
constexpr size_t kMaxBatch = 1000;

// Reads the fuzz input; what the server writes is kept to check the reply.
class FuzzStream final : public httplib::Stream {
 public:
  FuzzStream(const char* data, size_t size) : data_(data), size_(size) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, size_ - pos_);
    std::memcpy(ptr, data_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    written_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "192.0.2.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8081;
  }
  socket_t socket() const override { return INVALID_SOCKET; }
  bool done() const { return pos_ == size_; }
  const std::string& written() const { return written_; }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string written_;
};

// As the bridge replies: errors that name the client's own bytes must still print.
void Reply(httplib::Response& res, int code, const Json& body) {
  res.status = code;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void Error(httplib::Response& res, const absl::Status& s) {
  RC_FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument || s.code() == absl::StatusCode::kNotFound,
                "a parser refused a request with a code that is not a client error");
  Reply(res, s.code() == absl::StatusCode::kNotFound ? 404 : 400, Json{{"error", std::string(s.message())}});
}

absl::StatusOr<json> Body(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("body: not valid JSON");
  return j;
}

class FuzzServer final : public httplib::Server {
 public:
  FuzzServer() {
    set_payload_max_length(kMaxBody);
    set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string what = res.status == 404 ? absl::StrCat("no such endpoint: ", req.method, " ", req.path)
                                           : absl::StrCat("HTTP ", res.status);
      Reply(res, res.status, Json{{"error", what}});
    });
    set_exception_handler([](const httplib::Request& req, httplib::Response&, std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "exception in a route for %s %s: %s\n", req.method.c_str(), req.path.c_str(), ex.what());
      }
      RC_FUZZ_CHECK(false, "an exception escaped a route");
    });

    Post("/tasks", [](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<json> body = Body(req);
      if (!body.ok()) return Error(res, body.status());
      absl::StatusOr<rc::pb::TaskSpec> spec = rc::TaskSpecFromJson(*body);
      if (!spec.ok()) return Error(res, spec.status());
      Reply(res, 201, Json{{"task_id", "task-0123456789abcdef"}, {"status", "queued"}});
    });
    Post("/tasks/batch", [](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<json> body = Body(req);
      if (!body.ok()) return Error(res, body.status());
      if (!body->is_object() || !body->contains("tasks") || !(*body)["tasks"].is_array()) {
        return Error(res, absl::InvalidArgumentError("tasks: required, an array of tasks"));
      }
      const json& tasks = (*body)["tasks"];
      if (tasks.size() > kMaxBatch) return Error(res, absl::InvalidArgumentError("tasks: too many"));
      Json out = {{"tasks", Json::array()}};
      for (size_t i = 0; i < tasks.size(); ++i) {
        absl::StatusOr<rc::pb::TaskSpec> spec = rc::TaskSpecFromJson(tasks[i]);
        if (spec.ok()) {
          out["tasks"].push_back({{"task_id", absl::StrCat("task-", i)}, {"status", "queued"}});
        } else {
          out["tasks"].push_back({{"error", absl::StrCat("tasks[", i, "].", spec.status().message())}});
        }
      }
      Reply(res, 201, out);
    });
    Get(R"(/tasks/([^/]+))", [](const httplib::Request& req, httplib::Response& res) {
      Error(res, absl::NotFoundError(absl::StrCat("unknown task '", req.matches[1].str(), "'")));
    });
    Get(R"(/tasks/([^/]+)/wait)", [](const httplib::Request& req, httplib::Response& res) {
      double timeout = 30;
      if (req.has_param("timeout") &&
          (!absl::SimpleAtod(req.get_param_value("timeout"), &timeout) || !(timeout > 0) || timeout > 300)) {
        return Error(res, absl::InvalidArgumentError("timeout: expected seconds in (0, 300]"));
      }
      Error(res, absl::NotFoundError(absl::StrCat("unknown task '", req.matches[1].str(), "'")));
    });
    Delete(R"(/tasks/([^/]+))", [](const httplib::Request& req, httplib::Response& res) {
      Reply(res, 200, Json{{"task_id", req.matches[1].str()}, {"cancelled", false}});
    });
    Get("/tasks", [](const httplib::Request& req, httplib::Response& res) {
      if (req.has_param("status")) {
        absl::StatusOr<rc::pb::TaskStatus> st = rc::ParseStatus(req.get_param_value("status"));
        if (!st.ok()) return Error(res, absl::InvalidArgumentError(absl::StrCat("status: ", st.status().message())));
      }
      int limit = 100;
      if (req.has_param("limit") && !absl::SimpleAtoi(req.get_param_value("limit"), &limit)) {
        return Error(res, absl::InvalidArgumentError("limit: expected an integer"));
      }
      Json out = {{"tasks", Json::array()}};
      if (req.has_param("type")) out["type"] = req.get_param_value("type");
      Reply(res, 200, out);
    });
  }

  // Serves the requests in `stream` as one connection would.
  void Serve(FuzzStream& stream) {
    for (int i = 0; i < 8 && !stream.done(); ++i) {
      bool closed = false;
      size_t before = stream.written().size();
      process_request(stream, /*close_connection=*/false, closed, nullptr);
      CheckReply(stream.written().substr(before));
      if (closed) break;
    }
  }

 private:
  static void CheckReply(const std::string& reply) {
    size_t header_end = reply.find("\r\n\r\n");
    if (header_end == std::string::npos) return;  // httplib wrote nothing (e.g. an empty read)
    if (header_end + 4 == reply.size()) return;  // no body (HEAD, 204)
    const std::string head = reply.substr(0, header_end);
    if (head.find("application/json") == std::string::npos) return;  // httplib's own bare replies
    // A Range header gets a piece of the reply: httplib 0.11 honours it on every reply,
    // errors too (range_partial_reply.http).
    if (head.find("Content-Range:") != std::string::npos || head.rfind("HTTP/1.1 416", 0) == 0) return;
    json body = json::parse(reply.substr(header_end + 4), nullptr, false);
    if (body.is_discarded() || !body.is_object()) std::fprintf(stderr, "reply:\n%s\n", reply.c_str());
    RC_FUZZ_CHECK(!body.is_discarded() && body.is_object(), "a reply body that is not one JSON object");
    RC_FUZZ_CHECK(!body.contains("error") || head.rfind("HTTP/1.1 4", 0) == 0,
                  "an error reply without a 4xx status");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FuzzServer* server = new FuzzServer();
  FuzzStream stream(reinterpret_cast<const char*>(data), size);
  server->Serve(stream);
  return 0;
}
