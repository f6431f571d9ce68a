// browser_session's policy (worker/browser/browser_session.h): which payloads and URLs it
// takes, the browser's environment, and how a session's end becomes the outcome.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "nlohmann/json.hpp"
#include "worker/browser/browser_session.h"

namespace rc::worker {
namespace {

std::string ErrorOf(const std::string& payload) {
  absl::StatusOr<SessionRequest> r = ParseSessionRequest(payload);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

bool Has(const std::vector<std::string>& env, const std::string& kv) {
  return std::find(env.begin(), env.end(), kv) != env.end();
}

bool HasName(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& kv) { return kv.rfind(name + "=", 0) == 0; });
}

}  // namespace

TEST_CASE("browser_session payload: defaults and every field", "[browser_session]") {
  absl::StatusOr<SessionRequest> r = ParseSessionRequest(R"({"url": "https://example.com/a?b=1"})");
  REQUIRE(r.ok());
  CHECK(r->url == "https://example.com/a?b=1");
  CHECK(r->profile.empty());
  CHECK(r->complete_on == CompleteOn::kExit);
  CHECK_FALSE(r->headless.has_value());

  r = ParseSessionRequest(
      R"({"url": "about:blank", "profile": "shop_1", "complete_on": "callback", "headless": false})");
  REQUIRE(r.ok());
  CHECK(r->profile == "shop_1");
  CHECK(r->complete_on == CompleteOn::kCallback);
  REQUIRE(r->headless.has_value());
  CHECK_FALSE(*r->headless);

  r = ParseSessionRequest(R"({"url": "about:blank", "complete_on": "exit", "profile": null})");
  REQUIRE(r.ok());
  CHECK(r->complete_on == CompleteOn::kExit);
  CHECK(r->profile.empty());
}

TEST_CASE("browser_session payload: refusals name the field", "[browser_session]") {
  CHECK(ErrorOf("[1]") == "payload must be a JSON object");
  CHECK(ErrorOf("{}").find("payload.url: required") == 0);
  CHECK(ErrorOf(R"({"url": 5})") == "payload.url: expected a string");
  std::string unknown = ErrorOf(R"({"url": "about:blank", "port": 9222})");
  CHECK(unknown.find("payload.port: unknown key") == 0);
  CHECK(unknown.find("url, profile, complete_on, headless") != std::string::npos);
  CHECK(ErrorOf(R"({"url": "about:blank", "complete_on": "close"})") ==
        "payload.complete_on: 'close' is neither \"exit\" nor \"callback\"");
  CHECK(ErrorOf(R"({"url": "about:blank", "headless": "yes"})") == "payload.headless: expected true or false");
  CHECK(ErrorOf(R"({"url": "about:blank", "profile": "../x"})").find("payload.profile") == 0);
  CHECK(ErrorOf(R"({"url": "about:blank", "profile": "a/b"})").find("payload.profile") == 0);
  CHECK(ErrorOf(R"({"url": "file:///etc/shadow"})").find("payload.url: scheme 'file:' refused") == 0);
}

TEST_CASE("browser_session url schemes", "[browser_session]") {
  for (const char* ok : {"http://127.0.0.1:8080/", "https://example.com", "HTTPS://Example.com/path#frag",
                         "about:blank", "ABOUT:BLANK", "data:text/html,<title>t</title>", "http://h?q"}) {
    INFO(ok);
    CHECK(CheckSessionUrl(ok, "payload.url").ok());
  }
  struct Case {
    const char* url;
    const char* message;
  };
  for (const Case& c : {
           Case{"file:///etc/passwd", "payload.url: scheme 'file:' refused"},
           Case{"javascript:alert(1)", "payload.url: scheme 'javascript:' refused"},
           Case{"JavaScript:alert(1)", "payload.url: scheme 'javascript:' refused"},
           Case{"chrome://settings", "payload.url: scheme 'chrome:' refused"},
           Case{"view-source:http://x", "payload.url: scheme 'view-source:' refused"},
           Case{"about:version", "payload.url: of the about: URLs only about:blank is allowed"},
           Case{"example.com", "payload.url: needs a scheme"},
           Case{"--remote-debugging-address=0.0.0.0", "payload.url: needs a scheme"},
           Case{"http:example.com", "payload.url: http: URL must start with http://"},
           Case{"https:///path", "payload.url: https: URL has no host"},
           Case{"http://a b", "payload.url: must not contain whitespace"},
           Case{"http://a\nb", "payload.url: must not contain whitespace"},
           Case{"", "payload.url: must not be empty"},
       }) {
    INFO(c.url);
    absl::Status s = CheckSessionUrl(c.url, "payload.url");
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.message()).find(c.message) == 0);
  }
  std::string long_url = "data:," + std::string(kMaxSessionUrlBytes, 'a');
  CHECK(std::string(CheckSessionUrl(long_url, "payload.url").message()).find("longer than") != std::string::npos);
}

TEST_CASE("browser_session headless follows the worker's display", "[browser_session]") {
  CHECK(*ChooseHeadless(std::nullopt, "") == true);
  CHECK(*ChooseHeadless(std::nullopt, ":99") == false);
  CHECK(*ChooseHeadless(true, ":99") == true);
  CHECK(*ChooseHeadless(false, ":99") == false);
  CHECK(*ChooseHeadless(true, "") == true);
  absl::StatusOr<bool> none = ChooseHeadless(false, "");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == absl::StatusCode::kFailedPrecondition);  // another worker may have one
  CHECK(std::string(none.status().message()).find("--display") != std::string::npos);
}

TEST_CASE("browser_session environment: host env, display, callback and token", "[browser_session]") {
  std::vector<std::string> env =
      SessionEnvironment({"/w/t1", "/tmp/rc-browser-1", ":99", "t-1", "http://10.0.0.1:8080/tasks/t-1/complete", "tok"});
  CHECK(Has(env, "HOME=/w/t1"));
  CHECK(Has(env, "TMPDIR=/tmp/rc-browser-1"));
  CHECK(Has(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
  CHECK(Has(env, "DISPLAY=:99"));
  CHECK(Has(env, "RC_TASK_ID=t-1"));
  CHECK(Has(env, "RC_CALLBACK_URL=http://10.0.0.1:8080/tasks/t-1/complete"));
  CHECK(Has(env, "RETIRE_CLUSTER_TOKEN=tok"));
  CHECK(std::is_sorted(env.begin(), env.end()));

  env = SessionEnvironment({"/w/t2", "/tmp/rc-browser-2", "", "t-2", "", ""});
  CHECK_FALSE(HasName(env, "DISPLAY"));
  CHECK_FALSE(HasName(env, "RC_CALLBACK_URL"));
  CHECK_FALSE(HasName(env, "RETIRE_CLUSTER_TOKEN"));
  CHECK(Has(env, "RC_TASK_ID=t-2"));
}

TEST_CASE("browser_session outcome rules", "[browser_session]") {
  SessionEnd exited;
  exited.exited = true;
  exited.exit_code = 0;
  exited.task_id = "t-9";
  exited.url = "about:blank";
  exited.pid = 1234;
  exited.cdp_url = "http://127.0.0.1:40000";

  SECTION("exit mode: the browser's exit is success, whatever its code") {
    SessionOutcome o = DecideSessionOutcome(CompleteOn::kExit, exited);
    CHECK(o.failure.ok());
    nlohmann::json j = nlohmann::json::parse(o.result);
    CHECK(j["ended"] == "exit");
    CHECK(j["exit_code"] == 0);
    CHECK(j["url"] == "about:blank");
    CHECK(j["pid"] == 1234);
    CHECK(j["cdp_url"] == "http://127.0.0.1:40000");
    CHECK_FALSE(j.contains("signal"));

    exited.exit_code = -1;
    exited.signal = 9;
    o = DecideSessionOutcome(CompleteOn::kExit, exited);
    CHECK(o.failure.ok());
    j = nlohmann::json::parse(o.result);
    CHECK(j["exit_code"] == -1);
    CHECK(j["signal"] == 9);
  }
  SECTION("callback mode: an exit before the callback fails, saying how") {
    exited.exit_code = 3;
    SessionOutcome o = DecideSessionOutcome(CompleteOn::kCallback, exited);
    CHECK(o.failure.message() == "the browser exited (code 3) before POST /tasks/t-9/complete");
    exited.exit_code = -1;
    exited.signal = 15;
    o = DecideSessionOutcome(CompleteOn::kCallback, exited);
    CHECK(o.failure.message() == "the browser exited (signal 15) before POST /tasks/t-9/complete");
    CHECK(nlohmann::json::parse(o.result)["ended"] == "exit");
  }
  SECTION("a callback decides in either mode, and beats an exit seen with it") {
    for (CompleteOn mode : {CompleteOn::kExit, CompleteOn::kCallback}) {
      SessionEnd end = exited;
      end.completion = ExternalCompletion{::retire_cluster::v1::TASK_STATUS_SUCCESS, R"({"orders": 3})", ""};
      SessionOutcome o = DecideSessionOutcome(mode, end);
      CHECK(o.failure.ok());
      CHECK(o.result == R"({"orders": 3})");

      end.completion = ExternalCompletion{::retire_cluster::v1::TASK_STATUS_FAILED, R"({"step": 2})", "login refused"};
      o = DecideSessionOutcome(mode, end);
      CHECK(o.failure.message() == "login refused");
      CHECK(o.result == R"({"step": 2})");

      end.completion = ExternalCompletion{::retire_cluster::v1::TASK_STATUS_FAILED, "", ""};
      o = DecideSessionOutcome(mode, end);
      CHECK(o.failure.message() == "the callback reported failure");
      CHECK(o.result == "{}");
    }
  }
  SECTION("an exit before the browser came up fails in either mode (retried: Chromium cannot start here)") {
    for (CompleteOn mode : {CompleteOn::kExit, CompleteOn::kCallback}) {
      SessionEnd early = exited;
      early.cdp_url = "";
      early.exit_code = 1;
      SessionOutcome o = DecideSessionOutcome(mode, early);
      CHECK(o.failure.code() == absl::StatusCode::kUnavailable);
      CHECK(o.failure.message() ==
            "the browser exited (code 1) before it came up (it wrote no DevToolsActivePort); see its stderr");
    }
  }
  SECTION("stopped: neither exit nor callback is a failure (the Executor names it)") {
    SessionEnd stopped = exited;
    stopped.exited = false;
    SessionOutcome o = DecideSessionOutcome(CompleteOn::kExit, stopped);
    CHECK_FALSE(o.failure.ok());
    CHECK(nlohmann::json::parse(o.result)["ended"] == "stopped");
  }
}

}  // namespace rc::worker
