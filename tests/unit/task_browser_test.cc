// The `browser` block of python_script/node_task/command payloads and the CDP relay's
// argv and endpoints (issue 17): the pure parts. The real browser and sandbox are in
// tests/integration/task_browser_test.cc.
#include <catch2/catch.hpp>

#include "worker/browser/task_browser.h"
#include "worker/cdp_relay/relay.h"

namespace rc::worker {
namespace {

std::string ParseError(const std::string& payload) {
  absl::StatusOr<std::optional<TaskBrowserRequest>> r = ParseTaskBrowser(payload);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST_CASE("ParseTaskBrowser: absent or null is no browser, then the defaults and every key") {
  for (const char* none : {R"({"code": "x"})", R"({"browser": null})", ""}) {
    absl::StatusOr<std::optional<TaskBrowserRequest>> r = ParseTaskBrowser(none);
    REQUIRE(r.ok());
    CHECK_FALSE(r->has_value());
  }
  absl::StatusOr<std::optional<TaskBrowserRequest>> d = ParseTaskBrowser(R"({"browser": {}})");
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK((*d)->profile == "default");
  CHECK((*d)->keep_alive);
  CHECK((*d)->headless);
  absl::StatusOr<std::optional<TaskBrowserRequest>> all =
      ParseTaskBrowser(R"({"browser": {"profile": "shop-1.a_b", "keep_alive": false, "headless": false}})");
  REQUIRE(all.ok());
  REQUIRE(all->has_value());
  CHECK((*all)->profile == "shop-1.a_b");
  CHECK_FALSE((*all)->keep_alive);
  CHECK_FALSE((*all)->headless);
}

TEST_CASE("ParseTaskBrowser: bad blocks are refused naming payload.browser.KEY") {
  CHECK(ParseError(R"({"browser": true})") ==
        "payload.browser: expected an object such as {\"profile\": \"default\", \"keep_alive\": true}");
  CHECK(ParseError(R"({"browser": {"profle": "x"}})") ==
        "payload.browser.profle: unknown key (known: profile, keep_alive, headless)");
  CHECK(ParseError(R"({"browser": {"keep_alive": "yes"}})") == "payload.browser.keep_alive: expected true or false");
  CHECK(ParseError(R"({"browser": {"headless": 1}})") == "payload.browser.headless: expected true or false");
  CHECK(ParseError(R"({"browser": {"profile": 7}})") == "payload.browser.profile: expected a string");
  CHECK(ParseError(R"({"browser": {"port": 9222}})") ==
        "payload.browser.port: the CDP port is chosen by Chromium (--remote-debugging-port=0) and given to the task "
        "as RC_CDP_URL; remove payload.browser.port");
  CHECK(ParseError(R"({"browser": {"cdp_port": 9222}})").rfind("payload.browser.cdp_port: the CDP port is chosen", 0) ==
        0);
  for (const char* bad : {"../x", "a/b", "..", ".hidden", ""}) {
    const std::string message = ParseError(std::string(R"({"browser": {"profile": ")") + bad + "\"}}");
    INFO(bad << ": " << message);
    CHECK(message.rfind("payload.browser.profile", 0) == 0);
  }
  CHECK(ParseError("[1]") == "payload: expected a JSON object");
}

TEST_CASE("NeedsCdpRelay: only a sandbox without network needs the relay") {
  CHECK(NeedsCdpRelay("bwrap", false));
  CHECK_FALSE(NeedsCdpRelay("bwrap", true));  // the sandbox shares the host's loopback
  CHECK_FALSE(NeedsCdpRelay("process", false));
  CHECK_FALSE(NeedsCdpRelay("process", true));
}

TEST_CASE("RelayedArgv: the relay listens on the browser's own port and runs the task's argv") {
  CHECK(RelayedArgv("/opt/rc/retire-cluster-cdp-relay", 41234, "/d/tasks/t-1/cdp.sock",
                    {"/usr/bin/python3", "/d/tasks/t-1/main.py", "--flag"}) ==
        std::vector<std::string>{"/opt/rc/retire-cluster-cdp-relay", "--listen", "tcp:127.0.0.1:41234", "--connect",
                                 "unix:/d/tasks/t-1/cdp.sock", "--", "/usr/bin/python3", "/d/tasks/t-1/main.py",
                                 "--flag"});
}

TEST_CASE("CdpSocketPath: in the task dir when it fits a Unix socket, else the short dir") {
  CHECK(CdpSocketPath("/var/lib/rc/tasks/t-1-d1", "/var/lib/rc/s", "r1") == "/var/lib/rc/tasks/t-1-d1/cdp.sock");
  const std::string long_dir = "/var/lib/rc/tasks/" + std::string(100, 'x');
  CHECK(CdpSocketPath(long_dir, "/var/lib/rc/s", "r1") == "/var/lib/rc/s/cdp-r1.sock");
  CHECK(CdpSocketPath(long_dir, "/" + std::string(110, 's'), "r1").empty());
}

TEST_CASE("ParseRelayEndpoint: tcp with a numeric IPv4 host and a port, or an absolute unix path") {
  absl::StatusOr<RelayEndpoint> tcp = ParseRelayEndpoint("tcp:127.0.0.1:9222");
  REQUIRE(tcp.ok());
  CHECK_FALSE(tcp->unix_socket);
  CHECK(tcp->host == "127.0.0.1");
  CHECK(tcp->port == 9222);
  absl::StatusOr<RelayEndpoint> un = ParseRelayEndpoint("unix:/tmp/x.sock");
  REQUIRE(un.ok());
  CHECK(un->unix_socket);
  CHECK(un->path == "/tmp/x.sock");
  auto error = [](const std::string& text) {
    absl::StatusOr<RelayEndpoint> e = ParseRelayEndpoint(text);
    REQUIRE_FALSE(e.ok());
    return std::string(e.status().message());
  };
  CHECK(error("tcp:localhost:1") == "endpoint 'tcp:localhost:1': HOST must be a numeric IPv4 address");
  CHECK(error("tcp:127.0.0.1:0") == "endpoint 'tcp:127.0.0.1:0': PORT must be 1..65535");
  CHECK(error("tcp:127.0.0.1:70000") == "endpoint 'tcp:127.0.0.1:70000': PORT must be 1..65535");
  CHECK(error("tcp:127.0.0.1") == "endpoint 'tcp:127.0.0.1': expected tcp:HOST:PORT");
  CHECK(error("unix:rel.sock") == "endpoint 'unix:rel.sock': a unix: path must be absolute");
  CHECK(error("unix:/" + std::string(120, 'p')).find("the path is longer than 107 bytes") != std::string::npos);
  CHECK(error("http://x") == "endpoint 'http://x': expected tcp:HOST:PORT or unix:/PATH");
}

TEST_CASE("FindCdpRelay: a configured path must be an executable file") {
  ExecutionOptions options;
  options.cdp_relay = "/nonexistent/retire-cluster-cdp-relay";
  absl::StatusOr<std::string> r = FindCdpRelay(options);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(r.status().message()).find("/nonexistent/retire-cluster-cdp-relay") != std::string::npos);
  options.cdp_relay = "/bin/true";
  REQUIRE(FindCdpRelay(options).ok());
  CHECK(*FindCdpRelay(options) == "/bin/true");
}

TEST_CASE("TaskBrowser: no block attaches nothing, and a block on a worker without browsers is refused") {
  ExecutionOptions options;
  StopToken stop(absl::InfiniteFuture());
  TaskContext ctx;
  ctx.task_id = "t-1";
  ctx.stop = &stop;
  ProcessSpec spec;
  spec.argv = {"/bin/true"};
  SandboxPaths paths{"/d/t-1", {}};
  absl::StatusOr<std::unique_ptr<TaskBrowser>> none = TaskBrowser::Attach(std::nullopt, ctx, options, &spec, &paths);
  REQUIRE(none.ok());
  HandlerOutput out;
  out.result = R"({"exit_code":0})";
  (*none)->Finish(&out);
  CHECK(out.result == R"({"exit_code":0})");
  CHECK(spec.argv == std::vector<std::string>{"/bin/true"});
  CHECK(spec.env.empty());

  absl::StatusOr<std::unique_ptr<TaskBrowser>> refused =
      TaskBrowser::Attach(TaskBrowserRequest{}, ctx, options, &spec, &paths);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);  // retried, maybe elsewhere
  CHECK(std::string(refused.status().message()).rfind("payload.browser: this worker runs no browsers (", 0) == 0);
}

}  // namespace
}  // namespace rc::worker
