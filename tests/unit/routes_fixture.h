#pragma once
// The HTTP routes through their transport-free seam (BridgeRoutes::Handle) over a core
// with a fake clock: a Deferrer whose posts and timers the test runs by hand, and a
// Responder that keeps what it was answered.

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/http/routes.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator::http {

class ManualDeferrer final : public Deferrer {
 public:
  void Post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  std::function<void()> After(double seconds, std::function<void()> fn) override {
    timers.push_back(std::move(fn));
    timer_seconds.push_back(seconds);
    auto cancelled = std::make_shared<bool>(false);
    timer_cancelled.push_back(cancelled);
    return [cancelled] { *cancelled = true; };
  }
  void RunPosted() {
    for (int i = 0; i < 100 && !posted.empty(); ++i) {
      auto fn = std::move(posted.front());
      posted.pop_front();
      fn();
    }
  }
  std::deque<std::function<void()>> posted;
  std::vector<std::function<void()>> timers;
  std::vector<double> timer_seconds;
  std::vector<std::shared_ptr<bool>> timer_cancelled;
};

class Capture final : public Responder {
 public:
  void Reply(HttpResponse r) override { replies.push_back(std::move(r)); }
  void OnGone(std::function<void()> g) override { gone = std::move(g); }
  std::vector<HttpResponse> replies;
  std::function<void()> gone;
};

struct RoutesFixture : Fixture {
  // `tokens` nullptr: no client tokens (the loopback caller is admin).
  explicit RoutesFixture(const TokenTable* tokens = nullptr) : api(&core, tokens) {}

  ManualDeferrer deferrer;
  ClientApi api;
  BridgeRoutes routes{&api, &deferrer, RoutesOptions{}};

  std::shared_ptr<Capture> Call(const std::string& method, const std::string& path, const std::string& body = "",
                                std::vector<std::pair<std::string, std::string>> query = {},
                                const std::string& authorization = "") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.query = std::move(query);
    r.body = body;
    r.peer = "127.0.0.1";
    r.authorization = authorization;
    auto c = std::make_shared<Capture>();
    routes.Handle(r, c);
    deferrer.RunPosted();
    return c;
  }
};

// The one reply's body as JSON.
inline nlohmann::json Body(const std::shared_ptr<Capture>& c) {
  REQUIRE(c->replies.size() == 1);
  return nlohmann::json::parse(c->replies[0].body);
}

}  // namespace rc::coordinator::http
