// The HTTP server's own promises, with raw sockets where a client library would hide the
// bytes: strict framing, bodies read as JSON whatever their Content-Type, keep-alive and
// 100-continue, connection caps, header and body deadlines, and long polls that hold no
// thread. Every read has a deadline (SO_RCVTIMEO), every wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

using nlohmann::json;

struct RawReply {
  int status = 0;  // 0: no reply (closed or timed out)
  std::string head;
  std::string body;
};

// One TCP connection to the bridge on 127.0.0.1; reads give up after `read_timeout`.
class RawConn {
 public:
  explicit RawConn(int port, absl::Duration read_timeout = absl::Seconds(10)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv = absl::ToTimeval(read_timeout);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  ~RawConn() { close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // One reply with a Content-Length body (all this server sends).
  RawReply Read() {
    RawReply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    r.head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (r.head.size() < 12 || !absl::SimpleAtoi(r.head.substr(9, 3), &r.status)) return RawReply{};
    size_t length = 0;
    for (std::string key : {"Content-Length: ", "content-length: "}) {
      size_t at = r.head.find(key);
      if (at != std::string::npos) {
        absl::SimpleAtoi(r.head.substr(at + key.size(), r.head.find("\r\n", at) - at - key.size()), &length);
      }
    }
    while (buf_.size() < length) {
      if (!Fill()) return RawReply{};
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }
  // True when the server closes the connection (EOF or reset) before `limit`.
  bool ClosedWithin(absl::Duration limit) {
    const absl::Time deadline = absl::Now() + limit;
    char c[512];
    while (absl::Now() < deadline) {
      ssize_t n = recv(fd_, c, sizeof c, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return true;
    }
    return false;
  }

 private:
  bool Fill() {
    char c[16384];
    ssize_t n = recv(fd_, c, sizeof c, 0);
    if (n <= 0) return false;
    buf_.append(c, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Post(const std::string& path, const std::string& headers, const std::string& body) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: t\r\n", headers, "\r\n", body);
}

std::string Error(const RawReply& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "";
}

}  // namespace

TEST_CASE("HTTP framing: differing Content-Lengths, or Transfer-Encoding with Content-Length, are 400") {
  Cluster cluster;
  const std::string task = R"({"task_type":"echo"})";
  const std::string len = absl::StrCat("Content-Length: ", task.size(), "\r\n");
  struct Case {
    std::string headers, body, error_names;
  } cases[] = {
      {len + "Content-Length: 7\r\n", task, "Content-Length"},
      {"Transfer-Encoding: chunked\r\n" + len, "14\r\n" + task + "\r\n0\r\n\r\n", "Content-Length"},
      {len + "Transfer-Encoding: chunked\r\n", task, "Transfer-Encoding"},
      {len + "Transfer-Encoding: gzip\r\n", task, "Transfer-Encoding"},
      {"Transfer-Encoding: gzip\r\n", task, "Transfer-Encoding"},
      {"Content-Length: 2, 3\r\n", task, "Content-Length"},
  };
  for (const Case& c : cases) {
    INFO(c.headers);
    RawConn conn(cluster.http_port());
    REQUIRE(conn.Send(Post("/tasks", c.headers, c.body)));
    RawReply r = conn.Read();
    CHECK(r.status == 400);
    CHECK(absl::StrContains(Error(r), c.error_names));
    CHECK(absl::StrContains(r.head, "application/json"));
  }
  // Equal repeated Content-Lengths and a chunked body are unambiguous: accepted.
  for (const std::string& repeated :
       {len + len, absl::StrCat("Content-Length: ", task.size(), ", ", task.size(), "\r\n")}) {
    INFO(repeated);
    RawConn same(cluster.http_port());
    REQUIRE(same.Send(Post("/tasks", repeated, task)));
    CHECK(same.Read().status == 201);
  }
  RawConn chunked(cluster.http_port());
  REQUIRE(chunked.Send(Post("/tasks", "Transfer-Encoding: chunked\r\n", "14\r\n" + task + "\r\n0\r\n\r\n")));
  CHECK(chunked.Read().status == 201);
}

TEST_CASE("HTTP: an unknown method is 400 naming it, a known method on no route 404") {
  Cluster cluster;
  RawConn conn(cluster.http_port());
  REQUIRE(conn.Send("FOO /tasks HTTP/1.1\r\nHost: t\r\n\r\n"));
  RawReply r = conn.Read();
  CHECK(r.status == 400);
  CHECK(absl::StrContains(Error(r), "unknown HTTP method \"FOO\""));
  REQUIRE(conn.Send("PUT /tasks HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  RawReply put = conn.Read();
  CHECK(put.status == 404);
  CHECK(Error(put) == "no such endpoint: PUT /tasks");
}

TEST_CASE("HTTP: a JSON body is read as JSON whatever its Content-Type, larger than 8 KiB too") {
  Cluster cluster;
  const std::string text(20 << 10, 'x');
  const std::string body = absl::StrCat(R"({"task_type":"echo","payload":{"message":")", text, R"("}})");
  httplib::Client client("127.0.0.1", cluster.http_port());
  client.set_read_timeout(20, 0);
  for (const char* type : {"application/x-www-form-urlencoded", "text/plain", ""}) {
    INFO(type);
    auto r = client.Post("/tasks", body, type);
    REQUIRE(r);
    CHECK(r->status == 201);
    std::string id = json::parse(r->body)["task_id"];
    absl::StatusOr<pb::Task> t = cluster.core()->GetTask(id);
    REQUIRE(t.ok());
    CHECK(json::parse(t->spec().payload())["message"] == text);
  }
  // Without any Content-Type header at all.
  RawConn conn(cluster.http_port());
  REQUIRE(conn.Send(Post("/tasks", absl::StrCat("Content-Length: ", body.size(), "\r\n"), body)));
  CHECK(conn.Read().status == 201);
}

TEST_CASE("HTTP: POST /workers/ID/drain and /undrain need no body") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 1));
  RawConn conn(cluster.http_port());
  REQUIRE(conn.Send("POST /workers/w1/drain HTTP/1.1\r\nHost: t\r\n\r\n"));  // no Content-Length at all
  RawReply r = conn.Read();
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["drained"] == true);
  httplib::Client client("127.0.0.1", cluster.http_port());
  auto undrained = client.Post("/workers/w1/undrain");
  REQUIRE(undrained);
  CHECK(undrained->status == 200);
  CHECK(json::parse(undrained->body)["drained"] == false);
  auto unknown = client.Post("/workers/nope/drain");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
}

TEST_CASE("HTTP: keep-alive serves request after request on one connection, 100-continue is answered") {
  Cluster cluster;
  RawConn conn(cluster.http_port());
  for (int i = 0; i < 20; ++i) {
    REQUIRE(conn.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    RawReply r = conn.Read();
    REQUIRE(r.status == 200);
    CHECK(r.body == R"({"status":"ok"})");
  }
  // Two requests in one write (pipelined): both answered, in order.
  REQUIRE(conn.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(conn.Read().status == 200);
  CHECK(Error(conn.Read()) == "no such endpoint: GET /nope");
  const std::string task = R"({"task_type":"echo"})";
  REQUIRE(conn.Send(Post("/tasks", absl::StrCat("Content-Length: ", task.size(), "\r\nExpect: 100-continue\r\n"), "")));
  RawReply go = conn.Read();
  CHECK(go.status == 100);
  REQUIRE(conn.Send(task));
  CHECK(conn.Read().status == 201);
  // Connection: close is honoured.
  REQUIRE(conn.Send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  CHECK(conn.Read().status == 200);
  CHECK(conn.ClosedWithin(absl::Seconds(5)));
}

TEST_CASE("HTTP: connections past the caps are refused with a 503 naming the cap, a freed slot serves again") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.http_max_connections_per_address = 3;
  Cluster cluster(config);
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawConn>(cluster.http_port()));
    REQUIRE(held.back()->Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(held.back()->Read().status == 200);  // accepted and counted
  }
  RawConn over(cluster.http_port());
  RawReply r = over.Read();
  CHECK(r.status == 503);
  CHECK(Error(r) == "too many HTTP connections from 127.0.0.1 (http_max_connections_per_address is 3)");
  held.pop_back();
  CHECK(Eventually([&] {
    RawConn again(cluster.http_port(), absl::Seconds(2));
    return again.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") && again.Read().status == 200;
  }));

  CoordinatorConfig total = Cluster::FastConfig();
  total.http_max_connections = 2;
  Cluster small(total);
  RawConn a(small.http_port()), b(small.http_port());
  REQUIRE(a.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(b.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  REQUIRE(a.Read().status == 200);
  REQUIRE(b.Read().status == 200);
  RawConn c(small.http_port());
  RawReply refused = c.Read();
  CHECK(refused.status == 503);
  CHECK(Error(refused) == "too many HTTP connections (http_max_connections is 2)");
}

TEST_CASE("HTTP: a connection is closed at its header deadline, or at its body deadline") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.http_header_timeout = absl::Milliseconds(300);
  config.http_body_timeout = absl::Milliseconds(300);
  Cluster cluster(config);
  RawConn idle(cluster.http_port());
  RawConn partial_header(cluster.http_port());
  REQUIRE(partial_header.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));
  RawConn partial_body(cluster.http_port());
  REQUIRE(partial_body.Send(Post("/tasks", "Content-Length: 100\r\n", R"({"task_type":)")));
  CHECK(idle.ClosedWithin(absl::Seconds(10)));
  CHECK(partial_header.ClosedWithin(absl::Seconds(10)));
  CHECK(partial_body.ClosedWithin(absl::Seconds(10)));
  // An idle keep-alive connection too, after its reply.
  RawConn kept(cluster.http_port());
  REQUIRE(kept.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(kept.Read().status == 200);
  CHECK(kept.ClosedWithin(absl::Seconds(10)));
  // A prompt client is still served.
  RawConn prompt(cluster.http_port());
  REQUIRE(prompt.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(prompt.Read().status == 200);
}

TEST_CASE("HTTP: long polls hold no thread, each ends at its task's end, its timeout, or its client leaving") {
  Cluster cluster;
  httplib::Client client("127.0.0.1", cluster.http_port());
  client.set_read_timeout(20, 0);
  // No worker has tag x: these tasks stay queued.
  auto submit = [&] {
    auto r = client.Post("/tasks", R"({"task_type":"echo","requirements":{"required_tags":["x"]}})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    return json::parse(r->body)["task_id"].get<std::string>();
  };
  const std::string id = submit();
  std::vector<std::unique_ptr<RawConn>> polls;
  for (int i = 0; i < 50; ++i) {  // far more than the server has threads
    polls.push_back(std::make_unique<RawConn>(cluster.http_port()));
    REQUIRE(polls.back()->Send(absl::StrCat("GET /tasks/", id, "/wait?timeout=60 HTTP/1.1\r\nHost: t\r\n\r\n")));
  }
  // Other clients are served meanwhile (the old thread-per-connection server stalled).
  RawConn other(cluster.http_port());
  REQUIRE(other.Send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(other.Read().status == 200);
  // Half the clients leave; the rest see the task end.
  polls.resize(25);
  auto cancelled = client.Delete(("/tasks/" + id).c_str());
  REQUIRE(cancelled);
  REQUIRE(cancelled->status == 200);
  for (auto& p : polls) {
    RawReply r = p->Read();
    REQUIRE(r.status == 200);
    CHECK(json::parse(r.body)["status"] == "cancelled");
  }
  // The timeout answers 200 with the task as it is.
  const std::string queued = submit();
  auto waited = client.Get(("/tasks/" + queued + "/wait?timeout=0.2").c_str());
  REQUIRE(waited);
  CHECK(waited->status == 200);
  CHECK(json::parse(waited->body)["status"] == "queued");
}

TEST_CASE("HTTP: pipelined requests in one write are each answered, in order, the handler's work not lost") {
  Cluster cluster;
  const std::string task = R"({"task_type":"echo","requirements":{"required_tags":["x"]}})";
  const std::string submit = Post("/tasks", absl::StrCat("Content-Length: ", task.size(), "\r\n"), task);
  const std::string health = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    INFO("connection " << i);
    RawConn conn(cluster.http_port(), absl::Seconds(5));
    REQUIRE(conn.Send(submit + health));
    RawReply first = conn.Read();
    REQUIRE(first.status == 201);
    ids.push_back(json::parse(first.body)["task_id"]);
    RawReply second = conn.Read();
    REQUIRE(second.status == 200);
    CHECK(second.body == R"({"status":"ok"})");
    // Two at once of the quickest kind, and three.
    REQUIRE(conn.Send(health + health));
    CHECK(conn.Read().status == 200);
    CHECK(conn.Read().status == 200);
    REQUIRE(conn.Send(health + submit + "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK(conn.Read().status == 200);
    RawReply third = conn.Read();
    REQUIRE(third.status == 201);
    ids.push_back(json::parse(third.body)["task_id"]);
    CHECK(Error(conn.Read()) == "no such endpoint: GET /nope");
  }
  for (const std::string& id : ids) CHECK(cluster.core()->GetTask(id).ok());
  // The next request arrives while the handler works (the long poll below waits for
  // its timeout): it is answered after the poll.
  httplib::Client client("127.0.0.1", cluster.http_port());
  auto queued = client.Post("/tasks", task, "application/json");
  REQUIRE(queued);
  const std::string id = json::parse(queued->body)["task_id"];
  for (int i = 0; i < 5; ++i) {
    RawConn conn(cluster.http_port(), absl::Seconds(5));
    REQUIRE(conn.Send(absl::StrCat("GET /tasks/", id, "/wait?timeout=0.2 HTTP/1.1\r\nHost: t\r\n\r\n")));
    REQUIRE(conn.Send(health));
    RawReply poll = conn.Read();
    REQUIRE(poll.status == 200);
    CHECK(json::parse(poll.body)["status"] == "queued");
    CHECK(conn.Read().body == R"({"status":"ok"})");
  }
}

// What the server answered to a request whose chunk-size line or trailer never ends:
// fed up to 8 MiB, it must have stopped reading long before (400/431) or closed.
bool CutOff(int port, const std::string& start) {
  RawConn conn(port, absl::Seconds(5));
  if (!conn.Send(start)) return false;
  const std::string block(64 << 10, 'a');
  for (int i = 0; i < 128 && conn.Send(block); ++i) {
  }
  RawReply r = conn.Read();
  INFO("status " << r.status << " " << r.body);
  if (r.status != 0) return r.status == 400 || r.status == 431;
  return conn.ClosedWithin(absl::Seconds(5));
}

TEST_CASE("HTTP: an endless chunk extension or trailer is cut off, a chunked body of several MiB is accepted") {
  CoordinatorConfig config = Cluster::FastConfig();
  config.max_payload_bytes = 8 << 20;
  config.http_body_timeout = absl::Seconds(60);  // the cut-off must come from the bound, not a deadline
  Cluster cluster(config);
  const std::string chunked = "Transfer-Encoding: chunked\r\n";
  CHECK(CutOff(cluster.http_port(), Post("/tasks", chunked, "1;")));
  CHECK(CutOff(cluster.http_port(), Post("/tasks", chunked, "1;ext=")));
  const std::string task = R"({"task_type":"echo"})";
  CHECK(CutOff(cluster.http_port(), Post("/tasks", chunked, "14\r\n" + task + "\r\n0\r\nX-Trailer: ")));
  CHECK(CutOff(cluster.http_port(), Post("/tasks", chunked, std::string(40 << 10, '0'))));  // an endless size

  // 6 MiB in chunks of 1 MiB and one odd one: far more than the bound, all of it accepted.
  const std::string message(6 << 20, 'm');
  const std::string body = absl::StrCat(R"({"task_type":"echo","payload":{"message":")", message, R"("}})");
  std::string framed;
  for (size_t at = 0; at < body.size(); at += 1 << 20) {
    const std::string piece = body.substr(at, 1 << 20);
    absl::StrAppend(&framed, absl::Hex(piece.size()), ";note=x\r\n", piece, "\r\n");
  }
  absl::StrAppend(&framed, "0\r\nX-Trailer: done\r\n\r\n");
  RawConn conn(cluster.http_port(), absl::Seconds(20));
  REQUIRE(conn.Send(Post("/tasks", chunked, framed)));
  RawReply r = conn.Read();
  REQUIRE(r.status == 201);
  absl::StatusOr<pb::Task> t = cluster.core()->GetTask(json::parse(r.body)["task_id"].get<std::string>());
  REQUIRE(t.ok());
  CHECK(json::parse(t->spec().payload())["message"].get<std::string>().size() == message.size());
  // Past the body limit: 413, as before.
  RawConn big(cluster.http_port(), absl::Seconds(20));
  const std::string piece(1 << 20, 'b');
  std::string over;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&over, "100000\r\n", piece, "\r\n");
  big.Send(Post("/tasks", chunked, over));
  CHECK(big.Read().status == 413);
}

}  // namespace rc::testing
