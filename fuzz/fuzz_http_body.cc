// A whole HTTP connection's bytes, as a client of the bridge sends them, through the
// server's real request handling (coordinator/http/request_parse.h: Beast's parser with
// the server's limits, the framing checks, the answers to malformed requests, path and
// query decoding) into the REAL routes (coordinator/http/routes.h) over a real
// Coordinator with an in-memory store, answering as the loopback admin.
// Invariants beyond "no crash": every request gets exactly one answer (or none only
// when the parser says the client is gone); a refused request's answer is a 4xx; every
// JSON answer is one JSON object, and an {"error"} object comes with a 4xx/5xx; /metrics
// is the only text answer.
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/buffer.hpp>

#include "common/clock.h"
#include "common/json_view.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/http/request_parse.h"
#include "coordinator/http/routes.h"
#include "fuzz/fuzz_check.h"

namespace {

using nlohmann::json;
namespace http = rc::coordinator::http;
namespace bhttp = boost::beast::http;

constexpr size_t kMaxBody = 2 << 20;

// Runs posted work after the route returns (a sink may not call into the core), and
// timers at once: a long poll here ends at its first chance.
class InlineDeferrer final : public http::Deferrer {
 public:
  void Post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  std::function<void()> After(double, std::function<void()> fn) override {
    queue_.push_back(std::move(fn));
    return [] {};
  }
  void Drain() {
    for (int i = 0; i < 64 && !queue_.empty(); ++i) {
      std::function<void()> fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
    RC_FUZZ_CHECK(queue_.empty(), "deferred work keeps posting more");
  }

 private:
  std::deque<std::function<void()>> queue_;
};

class Capture final : public http::Responder {
 public:
  void Reply(http::HttpResponse r) override {
    ++replies;
    if (replies == 1) response = std::move(r);
  }
  void OnGone(std::function<void()> gone) override { gones.push_back(std::move(gone)); }
  int replies = 0;
  http::HttpResponse response;
  std::vector<std::function<void()>> gones;
};

void CheckAnswer(const http::HttpResponse& r) {
  RC_FUZZ_CHECK(r.status >= 200 && r.status < 600, "a status code out of range");
  if (r.content_type != "application/json") {
    RC_FUZZ_CHECK(r.content_type.rfind("text/plain", 0) == 0 && r.status == 200, "a text answer that is not /metrics");
    return;
  }
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) std::fprintf(stderr, "answer: %s\n", r.body.c_str());
  RC_FUZZ_CHECK(!body.is_discarded() && body.is_object(), "an answer body that is not one JSON object");
  RC_FUZZ_CHECK(!body.contains("error") || r.status >= 400, "an error answer without a 4xx/5xx status");
}

struct World {
  World() {
    rc::coordinator::CoordinatorOptions o;
    o.random = [] { return 0.5; };
    core = std::make_unique<rc::coordinator::Coordinator>(o, &store, &clock);
    api = std::make_unique<rc::coordinator::ClientApi>(core.get(), nullptr);
    routes = std::make_unique<http::BridgeRoutes>(api.get(), &deferrer, http::RoutesOptions{});
  }
  ~World() { core->Shutdown(); }
  rc::FakeClock clock;
  rc::coordinator::MemoryTaskStore store;
  InlineDeferrer deferrer;
  std::unique_ptr<rc::coordinator::Coordinator> core;
  std::unique_ptr<rc::coordinator::ClientApi> api;
  std::unique_ptr<http::BridgeRoutes> routes;
};

// Serves the requests in `data` as one connection would; false once it would close.
bool ServeOne(World& w, const char* data, size_t size, size_t* used) {
  http::RequestParser parser;
  http::ConfigureParser(parser, kMaxBody);
  boost::beast::error_code ec;
  size_t pos = 0;
  // As the connection reads: the headers, the framing check, then the body.
  auto feed = [&](auto done) {
    while (!done() && !ec) {
      const size_t n = parser.put(boost::asio::buffer(data + pos, size - pos), ec);
      pos += n;
      if (ec && ec != bhttp::error::need_more) break;
      if (!done() && (n == 0 || pos == size)) {
        ec = bhttp::error::partial_message;  // the connection ends mid-request
      } else {
        ec = {};
      }
    }
  };
  feed([&] { return parser.is_header_done(); });
  std::optional<http::HttpResponse> refused;
  if (!ec) refused = http::CheckFraming(parser);
  if (!refused.has_value()) feed([&] { return parser.is_done(); });
  *used = pos;
  if (ec && !refused.has_value()) {
    refused = http::ParseErrorResponse(ec, "body too large");
    if (!refused.has_value()) return false;  // nobody left to answer
  }
  if (refused.has_value()) {
    RC_FUZZ_CHECK(refused->status >= 400 && refused->status < 500, "a refused request answered without a 4xx");
    CheckAnswer(*refused);
    return false;
  }
  const bool keep_alive = parser.get().keep_alive();
  auto capture = std::make_shared<Capture>();
  w.routes->Handle(http::ToHttpRequest(parser.release(), "127.0.0.1"), capture);
  w.deferrer.Drain();
  RC_FUZZ_CHECK(capture->replies == 1, "a request answered other than exactly once");
  CheckAnswer(capture->response);
  return keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  static int runs = 0;
  if (++runs % 512 == 0) {  // the tasks fuzz inputs submit pile up in memory
    delete world;
    world = new World();
  }
  const char* p = reinterpret_cast<const char*>(data);
  for (int i = 0; i < 8 && size > 0; ++i) {
    size_t used = 0;
    const bool more = ServeOne(*world, p, size, &used);
    p += used;
    size -= used;
    if (!more || used == 0) break;
  }
  return 0;
}
