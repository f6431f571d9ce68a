// The HTTP routes through their transport-free seam (BridgeRoutes::Handle), over a core
// with a fake clock: answers, auth, and the long poll's every ending, with timers fired
// by hand.
#include <sys/resource.h>

#include <catch2/catch.hpp>

#include "coordinator/http/http_bridge.h"
#include "tests/unit/routes_fixture.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

TEST_CASE_METHOD(RoutesFixture, "Routes: unknown endpoints, drain without a body, remote callers without tokens") {
  auto nope = Call("PUT", "/tasks");
  CHECK(nope->replies[0].status == 404);
  CHECK(Body(nope)["error"] == "no such endpoint: PUT /tasks");
  CHECK(Call("GET", "/tasks/")->replies[0].status == 404);

  Join("w1", 1, std::make_shared<FakeLink>());
  auto drained = Call("POST", "/workers/w1/drain");
  CHECK(drained->replies[0].status == 200);
  CHECK(Body(drained)["drained"] == true);

  HttpRequest remote;
  remote.method = "GET";
  remote.path = "/stats";
  remote.peer = "192.0.2.7";
  auto c = std::make_shared<Capture>();
  routes.Handle(remote, c);
  REQUIRE(c->replies.size() == 1);
  CHECK(c->replies[0].status == 401);
  CHECK(c->replies[0].headers == std::vector<std::pair<std::string, std::string>>{{"WWW-Authenticate", "Bearer"}});
}

TEST_CASE_METHOD(RoutesFixture, "Routes: a long poll answers at the task's end and unwatches, the timer is cancelled") {
  std::string id = Submit("echo", pb::PRIORITY_NORMAL, [](pb::TaskSpec* s) {
    s->mutable_requirements()->add_required_tags("nowhere");
  });
  auto poll = Call("GET", "/tasks/" + id + "/wait");
  CHECK(poll->replies.empty());  // waiting, on no thread
  REQUIRE(deferrer.timers.size() == 1);
  auto cancelled = Call("DELETE", "/tasks/" + id);
  CHECK(Body(cancelled) == json{{"task_id", id}, {"cancelled", true}});
  deferrer.RunPosted();
  CHECK(Body(poll)["status"] == "cancelled");
  CHECK(*deferrer.timer_cancelled[0]);
  deferrer.timers[0]();  // a timer that fires late changes nothing
  deferrer.RunPosted();
  CHECK(poll->replies.size() == 1);
}

TEST_CASE_METHOD(RoutesFixture, "Routes: a long poll's timeout answers the task as it is, a client gone gets nothing") {
  std::string id = Submit("echo");  // no worker: stays queued
  auto timed = Call("GET", "/tasks/" + id + "/wait", "", {{"timeout", "5"}});
  REQUIRE(deferrer.timers.size() == 1);
  deferrer.timers[0]();
  deferrer.RunPosted();
  CHECK(Body(timed)["status"] == "queued");

  auto left = Call("GET", "/tasks/" + id + "/wait");
  REQUIRE(left->gone);
  left->gone();
  deferrer.RunPosted();
  CHECK(*deferrer.timer_cancelled[1]);
  Call("DELETE", "/tasks/" + id);
  deferrer.RunPosted();
  CHECK(left->replies.empty());

  CHECK(Body(Call("GET", "/tasks/" + id + "/wait", "", {{"timeout", "0"}}))["error"] ==
        "timeout: expected seconds in (0, 300]");
  CHECK(Body(Call("GET", "/tasks/task-nope/wait"))["error"] == "no task with id 'task-nope'");
}

TEST_CASE_METHOD(RoutesFixture, "Routes: an unknown method is 400 naming it, a known one on no route 404") {
  auto foo = Call("FOO", "/tasks");
  REQUIRE(foo->replies.size() == 1);
  CHECK(foo->replies[0].status == 400);
  CHECK(Body(foo)["error"] == "unknown HTTP method \"FOO\": use GET, POST or DELETE");
  auto odd = Call("GE\nT", "/healthz");
  CHECK(odd->replies[0].status == 400);
  CHECK(Body(odd)["error"] == "unknown HTTP method \"GE\\nT\": use GET, POST or DELETE");
  for (const char* known : {"PUT", "PATCH", "OPTIONS", "DELETE"}) {
    INFO(known);
    auto r = Call(known, "/healthz");
    CHECK(r->replies[0].status == 404);
    CHECK(Body(r)["error"] == std::string("no such endpoint: ") + known + " /healthz");
  }
}

TEST_CASE("HTTP connection caps fit under the open-file limit, keeping a reserve") {
  // The usual soft limit: 4096/512 would exhaust it (accept EMFILE, gRPC and the store starved).
  HttpConnectionCaps c = FitConnectionCaps(4096, 512, 1024);
  CHECK(c.max_connections == 1024 - 256);
  CHECK(c.max_connections_per_address == 512);
  CHECK(c.lowered);
  // A raised limit leaves the configuration alone.
  c = FitConnectionCaps(4096, 512, 1 << 20);
  CHECK(c.max_connections == 4096);
  CHECK(c.max_connections_per_address == 512);
  CHECK_FALSE(c.lowered);
  c = FitConnectionCaps(4096, 512, RLIM_INFINITY);
  CHECK(c.max_connections == 4096);
  CHECK_FALSE(c.lowered);
  // Exactly fitting: not lowered.
  CHECK_FALSE(FitConnectionCaps(768, 512, 1024).lowered);
  // The per-address cap never exceeds the total.
  c = FitConnectionCaps(4096, 512, 600);
  CHECK(c.max_connections == 600 - 256);
  CHECK(c.max_connections_per_address == 600 - 256);
  // A tiny limit: half of it, at least one.
  // A per-address cap above a total the limit leaves alone is the operator's to see.
  c = FitConnectionCaps(2, 512, 1024);
  CHECK(c.max_connections == 2);
  CHECK_FALSE(c.lowered);
  c = FitConnectionCaps(4096, 512, 100);
  CHECK(c.max_connections == 50);
  CHECK(c.max_connections_per_address == 50);
  CHECK(FitConnectionCaps(4096, 512, 1).max_connections == 1);
}

}  // namespace
}  // namespace rc::coordinator::http
