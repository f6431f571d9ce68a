// http_request against a one-shot HTTP server on 127.0.0.1 (a thread in the test).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/opt_in_handlers.h"

namespace rc::worker {
namespace {

// Accepts one connection, records the request, answers `response`.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this] {
      timeval tv{10, 0};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buf[4096];
      ssize_t n;
      while ((n = read(c, buf, sizeof(buf))) > 0) {
        request_.append(buf, n);
        size_t end = request_.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        size_t cl = request_.find("Content-Length: ");
        size_t want = cl == std::string::npos ? 0 : std::stoul(request_.substr(cl + 16));
        if (request_.size() >= end + 4 + want) break;
      }
      ssize_t w = write(c, response_.data(), response_.size());
      (void)w;
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }
  const std::string& request() const { return request_; }

 private:
  std::string response_;
  int fd_;
  int port_;
  std::string request_;
  std::thread thread_;
};

absl::StatusOr<HandlerOutput> Fetch(const nlohmann::json& payload) {
  auto h = MakeHttpRequestHandler(1 << 20);
  StopToken stop(absl::Now() + absl::Seconds(20));
  return h->Run(TaskContext{"task-h", 1, payload.dump(), &stop, {}, nullptr});
}

}  // namespace

TEST_CASE("http_request returns status, headers and body, and sends method, headers and body") {
  OneShotServer server("HTTP/1.1 201 Created\r\nX-Test: yes\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  auto out = Fetch({{"url", server.url("/things")},
                    {"method", "POST"},
                    {"headers", {{"X-Token", "abc"}}},
                    {"body", "{\"a\":1}"}});
  REQUIRE(out.ok());
  nlohmann::json r = nlohmann::json::parse(out->result);
  CHECK(r["status_code"] == 201);
  CHECK(r["headers"]["x-test"] == "yes");
  CHECK(r["body"] == "hello");
  CHECK(server.request().rfind("POST /things HTTP/1.1\r\n", 0) == 0);
  CHECK(server.request().find("X-Token: abc\r\n") != std::string::npos);
  CHECK(server.request().find("\r\n\r\n{\"a\":1}") != std::string::npos);
}

TEST_CASE("http_request: connection refused fails with a readable error, bad input names the field") {
  int port;
  {
    OneShotServer closed("");  // learn a free port, then free it
    port = std::stoi(closed.url("").substr(17));
  }
  auto out = Fetch({{"url", absl::StrCat("http://127.0.0.1:", port, "/")}});
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(std::string(out.status().message()), Catch::Contains("failed: Couldn't connect to server"));
  CHECK(Fetch({{"url", "file:///etc/passwd"}}).status().message() ==
        "payload.url: required, an http:// or https:// URL");
  CHECK(Fetch({{"url", "http://127.0.0.1:1/"}, {"method", "BREW"}}).status().message() ==
        "payload.method: unknown method 'BREW'");
}

TEST_CASE("http_request refuses a body over the cap") {
  std::string big(2 << 20, 'x');
  OneShotServer server(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", big.size(), "\r\n\r\n", big));
  auto out = Fetch({{"url", server.url("/big")}});
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().message() == "response body larger than 1048576 bytes");
}

}  // namespace rc::worker
