// The missions API (coordinator/http/missions.h): the Mission and browser control
// schemas read into tasks, task outcomes written back as MissionResult, and both routes
// through BridgeRoutes over a core with a fake clock and fake worker links.
#include <catch2/catch.hpp>

#include "coordinator/http/missions.h"
#include "tests/unit/routes_fixture.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

std::string MissionError(const json& j) {
  absl::StatusOr<Mission> m = MissionSpecFromJson(j);
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(m.status().message());
}

std::string BrowserError(const json& j) {
  absl::StatusOr<BrowserRequest> r = BrowserRequestFromJson(j);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST_CASE("MissionSpecFromJson: a full mission becomes a python_script task") {
  const json mission = {{"mission_id", "calc_001"},
                        {"code", "print(2 + 2)"},
                        {"requirements", {"requests", "beautifulsoup4>=4"}},
                        {"browser_interaction", false},
                        {"keep_alive", true},
                        {"target_device_id", 123},
                        {"timeout", 12.5},
                        {"metadata", {{"user", "ana"}, {"n", 5}, {"tags", {"a", "b"}}, {"on", true}, {"x", nullptr}}}};
  absl::StatusOr<Mission> m = MissionSpecFromJson(mission);
  REQUIRE(m.ok());
  CHECK(m->mission_id == "calc_001");
  CHECK_FALSE(m->browser_interaction);
  CHECK(m->timeout_seconds == 12.5);
  const pb::TaskSpec& s = m->spec;
  CHECK(s.task_type() == "python_script");
  CHECK(json::parse(s.payload()) == json{{"code", "print(2 + 2)"},
                                         {"requirements", {"requests", "beautifulsoup4>=4"}},
                                         {"keep_alive", true},
                                         {"timeout", 12.5}});
  CHECK(s.requirements().timeout_seconds() == 12.5);
  CHECK(s.requirements().target_device_id() == "123");
  CHECK(s.requirements().max_retries() == 0);
  const std::map<std::string, std::string> meta(s.metadata().begin(), s.metadata().end());
  CHECK(meta == std::map<std::string, std::string>{{"mission_id", "calc_001"},
                                                   {"user", "ana"},
                                                   {"n", "5"},
                                                   {"tags", "[\"a\",\"b\"]"},
                                                   {"on", "true"},
                                                   {"x", "null"}});
}

TEST_CASE("MissionSpecFromJson: defaults, and null as an absent optional field") {
  for (const json& mission : {json{{"mission_id", "m"}, {"code", "pass"}},
                              json{{"mission_id", "m"},
                                   {"code", "pass"},
                                   {"requirements", nullptr},
                                   {"browser_interaction", nullptr},
                                   {"keep_alive", nullptr},
                                   {"target_device_id", nullptr},
                                   {"timeout", nullptr},
                                   {"metadata", nullptr}}}) {
    INFO(mission.dump());
    absl::StatusOr<Mission> m = MissionSpecFromJson(mission);
    REQUIRE(m.ok());
    CHECK(m->timeout_seconds == 300);
    CHECK(json::parse(m->spec.payload()) ==
          json{{"code", "pass"}, {"requirements", json::array()}, {"keep_alive", false}, {"timeout", 300}});
    CHECK(m->spec.requirements().timeout_seconds() == 300);
    CHECK(m->spec.requirements().target_device_id().empty());
    CHECK(m->spec.metadata().size() == 1);
  }
  absl::StatusOr<Mission> named = MissionSpecFromJson(
      {{"mission_id", "m"}, {"code", ""}, {"target_device_id", "pc-1"}, {"metadata", {{"mission_id", "m"}}}});
  REQUIRE(named.ok());
  CHECK(named->spec.requirements().target_device_id() == "pc-1");
  CHECK(named->spec.metadata().at("mission_id") == "m");
  absl::StatusOr<Mission> browser =
      MissionSpecFromJson({{"mission_id", "m"}, {"code", "x"}, {"browser_interaction", true}});
  REQUIRE(browser.ok());
  CHECK(browser->browser_interaction);
  // The script gets the worker's persistent browser; keep_alive (false by default) also
  // says whether that browser outlives the mission.
  CHECK(json::parse(browser->spec.payload())["browser"] == json{{"profile", "default"}, {"keep_alive", false}});
  absl::StatusOr<Mission> kept = MissionSpecFromJson(
      {{"mission_id", "m"}, {"code", "x"}, {"browser_interaction", true}, {"keep_alive", true}});
  REQUIRE(kept.ok());
  CHECK(json::parse(kept->spec.payload())["browser"] == json{{"profile", "default"}, {"keep_alive", true}});
  CHECK(json::parse(kept->spec.payload())["keep_alive"] == true);
  CHECK_FALSE(json::parse(named->spec.payload()).contains("browser"));
}

TEST_CASE("MissionSpecFromJson: bad input is refused naming the field") {
  const json ok = {{"mission_id", "m"}, {"code", "pass"}};
  auto with = [&](const std::string& key, const json& value) {
    json j = ok;
    j[key] = value;
    return j;
  };
  auto without = [&](const std::string& key) {
    json j = ok;
    j.erase(key);
    return j;
  };
  CHECK(MissionError(json::array()) == "body: expected a mission object");
  CHECK(MissionError(without("mission_id")) == "mission_id: required, a non-empty string");
  CHECK(MissionError(with("mission_id", nullptr)) == "mission_id: required, a non-empty string");
  CHECK(MissionError(with("mission_id", "")) == "mission_id: expected a non-empty string");
  CHECK(MissionError(with("mission_id", 7)) == "mission_id: expected a non-empty string");
  CHECK(MissionError(without("code")) == "code: required, Python source");
  CHECK(MissionError(with("code", json::array())) == "code: expected a string of Python source");
  CHECK(MissionError(with("requirements", "requests")) == "requirements: expected a list of package names");
  CHECK(MissionError(with("requirements", {"requests", 2})) == "requirements[1]: expected a string");
  CHECK(MissionError(with("browser_interaction", "yes")) == "browser_interaction: expected true or false");
  CHECK(MissionError(with("keep_alive", 1)) == "keep_alive: expected true or false");
  CHECK(MissionError(with("target_device_id", 1.5)) == "target_device_id: expected a string or an integer");
  CHECK(MissionError(with("target_device_id", true)) == "target_device_id: expected a string or an integer");
  CHECK(MissionError(with("timeout", "300")) == "timeout: expected a number of seconds");
  CHECK(MissionError(with("timeout", 0)) == "timeout: must be greater than 0 and at most 2592000 seconds (30 days), got 0");
  CHECK(MissionError(with("timeout", -5)) ==
        "timeout: must be greater than 0 and at most 2592000 seconds (30 days), got -5");
  CHECK(MissionError(with("timeout", 1e9)) ==
        "timeout: must be greater than 0 and at most 2592000 seconds (30 days), got 1000000000.0");
  CHECK(MissionError(with("metadata", json::array())) == "metadata: expected an object");
  CHECK(MissionError(with("metadata", {{"mission_id", "other"}})) == "metadata.mission_id: reserved: set from mission_id");
  CHECK(MissionError(with("script", "x")) == "script: unknown field");
}

pb::Task Ended(pb::TaskStatus status) {
  pb::Task t;
  t.set_task_id("task-00ab");
  t.set_status(status);
  t.set_worker_device_id("pc-1");
  t.set_attempts(1);
  t.set_stdout("4\n");
  t.set_stderr("warn\n");
  t.set_exit_code(status == pb::TASK_STATUS_SUCCESS ? 0 : 1);
  t.set_execution_time_seconds(1.5);
  return t;
}

TEST_CASE("MissionResultJson: success, failed, timeout and cancelled tasks") {
  const json success = json::parse(JsonText(MissionResultJson("m1", Ended(pb::TASK_STATUS_SUCCESS))));
  CHECK(success == json{{"mission_id", "m1"},
                        {"success", true},
                        {"stdout", "4\n"},
                        {"stderr", "warn\n"},
                        {"exit_code", 0},
                        {"execution_time", 1.5},
                        {"error", nullptr},
                        {"metadata", {{"task_id", "task-00ab"}, {"device_id", "pc-1"}, {"status", "success"}, {"attempts", 1}}}});
  // Keys in the executor's order.
  CHECK(JsonText(MissionResultJson("m1", Ended(pb::TASK_STATUS_SUCCESS))).rfind("{\"mission_id\":\"m1\",\"success\":true,", 0) == 0);

  pb::Task failed = Ended(pb::TASK_STATUS_FAILED);
  failed.set_error_message("exited with code 1");
  json f = json::parse(JsonText(MissionResultJson("m1", failed)));
  CHECK(f["success"] == false);
  CHECK(f["error"] == "exited with code 1");
  CHECK(f["exit_code"] == 1);
  CHECK(f["stdout"] == "4\n");
  CHECK(f["metadata"]["status"] == "failed");

  json t = json::parse(JsonText(MissionResultJson("m1", Ended(pb::TASK_STATUS_TIMEOUT))));
  CHECK(t["success"] == false);
  CHECK(t["error"] == "task ended timeout");
  CHECK(t["metadata"]["status"] == "timeout");

  pb::Task cancelled = Ended(pb::TASK_STATUS_CANCELLED);
  cancelled.clear_worker_device_id();
  cancelled.set_attempts(0);
  cancelled.set_error_message("cancelled by alice");
  json c = json::parse(JsonText(MissionResultJson("m1", cancelled)));
  CHECK(c["success"] == false);
  CHECK(c["error"] == "cancelled by alice");
  CHECK(c["metadata"] == json{{"task_id", "task-00ab"}, {"device_id", nullptr}, {"status", "cancelled"}, {"attempts", 0}});

  pb::Task queued;
  queued.set_task_id("task-1");
  queued.set_status(pb::TASK_STATUS_QUEUED);
  json p = json::parse(JsonText(MissionPendingJson("m2", queued, "still queued")));
  CHECK(p == json{{"mission_id", "m2"},
                  {"success", false},
                  {"stdout", ""},
                  {"stderr", ""},
                  {"exit_code", nullptr},
                  {"execution_time", nullptr},
                  {"error", "still queued"},
                  {"metadata", {{"task_id", "task-1"}, {"device_id", nullptr}, {"status", "queued"}, {"attempts", 0}}}});
  json r = json::parse(JsonText(MissionRefusedJson("m3", "no")));
  CHECK(r["metadata"] == json{{"task_id", nullptr}, {"device_id", nullptr}, {"status", nullptr}, {"attempts", 0}});
  CHECK(r["error"] == "no");
}

TEST_CASE("BrowserRequestFromJson and the browser task's result") {
  absl::StatusOr<BrowserRequest> r =
      BrowserRequestFromJson({{"operation", "start"}, {"port", 9222}, {"target_device_id", 7}});
  REQUIRE(r.ok());
  CHECK(r->operation == "start");
  CHECK(r->port == 9222);
  CHECK(r->target_device_id == "7");
  pb::TaskSpec spec = BrowserTaskSpec(*r);
  CHECK(spec.task_type() == "browser");
  CHECK(json::parse(spec.payload()) == json{{"operation", "start"}, {"profile", "default"}});
  CHECK(spec.requirements().target_device_id() == "7");
  CHECK(spec.requirements().timeout_seconds() == kBrowserTaskTimeoutSeconds);

  // Parsed from text, a port is an unsigned JSON number; built in C++, a signed one.
  absl::StatusOr<BrowserRequest> parsed =
      BrowserRequestFromJson(json::parse(R"({"operation": "status", "port": 9222, "target_device_id": null})"));
  REQUIRE(parsed.ok());
  CHECK(parsed->port == 9222);
  CHECK(parsed->target_device_id.empty());
  CHECK(BrowserError(json::parse(R"({"operation": "status", "port": 18446744073709551615})")) ==
        "port: expected a port number 1..65535, got 18446744073709551615");
  CHECK(BrowserError("start") == "body: expected an object with an operation");
  CHECK(BrowserError(json::object()) == "operation: required: start, stop or status");
  CHECK(BrowserError({{"operation", 1}}) == "operation: expected start, stop or status");
  CHECK(BrowserError({{"operation", "reboot"}}) == "operation: unknown operation 'reboot': expected start, stop or status");
  CHECK(BrowserError({{"operation", "start"}, {"port", 0}}) == "port: expected a port number 1..65535, got 0");
  CHECK(BrowserError({{"operation", "start"}, {"port", 65536}}) == "port: expected a port number 1..65535, got 65536");
  CHECK(BrowserError({{"operation", "start"}, {"port", -1}}) == "port: expected a port number 1..65535, got -1");
  CHECK(BrowserError({{"operation", "start"}, {"port", "9222"}}) == "port: expected a port number 1..65535, got \"9222\"");
  CHECK(BrowserError({{"operation", "start"}, {"target_device_id", 1.5}}) ==
        "target_device_id: expected a string or an integer");
  CHECK(BrowserError({{"operation", "start"}, {"headless", true}}) == "headless: unknown field");

  pb::Task t;
  t.set_task_id("task-b");
  t.set_status(pb::TASK_STATUS_SUCCESS);
  t.set_result(R"({"running": true, "cdp_url": "http://127.0.0.1:9222", "pid": 42, "profile": "default"})");
  CHECK(json::parse(JsonText(BrowserResultJson(*r, t, "unused"))) ==
        json{{"success", true},
             {"is_running", true},
             {"cdp_url", "http://127.0.0.1:9222"},
             {"message", "browser running at http://127.0.0.1:9222"},
             {"task_id", "task-b"}});
  BrowserRequest stop{"stop", std::nullopt, ""};
  t.set_result(R"({"running": false, "cdp_url": null})");
  json stopped = json::parse(JsonText(BrowserResultJson(stop, t, "unused")));
  CHECK(stopped["success"] == true);
  CHECK(stopped["is_running"] == false);
  CHECK(stopped["cdp_url"] == nullptr);
  CHECK(stopped["message"] == "browser stopped");

  t.set_status(pb::TASK_STATUS_FAILED);
  t.set_error_message("chromium not found");
  CHECK(json::parse(JsonText(BrowserResultJson(*r, t, "unused"))) == json{{"success", false},
                                                                        {"is_running", false},
                                                                        {"cdp_url", nullptr},
                                                                        {"message", "chromium not found"},
                                                                        {"task_id", "task-b"}});
  t.set_status(pb::TASK_STATUS_RUNNING);
  CHECK(json::parse(JsonText(BrowserResultJson(*r, t, "still running")))["message"] == "still running");
}

// ---- The routes ----

const std::string kAlice = "alice-token-0123456789abcdef";
const std::string kReader = "read-token-0123456789abcdef0";

TokenTable Tokens() {
  absl::StatusOr<TokenTable> t = TokenTable::Make({}, {"submit " + kAlice + " alice", "read " + kReader + " auditor"});
  REQUIRE(t.ok());
  return *std::move(t);
}

struct WithTokens {
  TokenTable tokens = Tokens();
};

struct MissionRoutes : WithTokens, RoutesFixture {
  MissionRoutes() : RoutesFixture(&tokens) {}

  std::shared_ptr<Capture> Execute(const json& mission, const std::string& token = kAlice,
                                   std::vector<std::pair<std::string, std::string>> query = {}) {
    return Call("POST", "/v1/missions/execute", mission.dump(), std::move(query), "Bearer " + token);
  }
  std::shared_ptr<Capture> Browser(const json& body, const std::string& token = kAlice) {
    return Call("POST", "/v1/browser/control", body.dump(), {}, "Bearer " + token);
  }
  // A worker that runs `types`; returns its epoch.
  uint64_t JoinWith(const std::string& device, std::vector<std::string> types, std::shared_ptr<FakeLink> link) {
    pb::Register reg;
    pb::Capabilities* c = reg.mutable_capabilities();
    c->set_device_id(device);
    c->set_slots(1);
    c->set_platform("linux");
    c->set_cpu_cores(2);
    for (const std::string& t : types) c->add_task_types(t);
    absl::StatusOr<uint64_t> epoch = core.RegisterWorker(reg, link);
    REQUIRE(epoch.ok());
    return *epoch;
  }
  void FinishWith(const std::string& device, uint64_t epoch, const pb::Assignment& a, pb::TaskFinished f) {
    pb::WorkerMessage m;
    f.set_task_id(a.task_id());
    f.set_attempt(a.attempt());
    *m.add_finished() = std::move(f);
    core.HandleWorkerMessage(device, epoch, m);
    deferrer.RunPosted();
  }
};

TEST_CASE_METHOD(MissionRoutes, "Missions: a mission runs on a python_script worker and answers its MissionResult") {
  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = JoinWith("pc-1", {"python_script"}, link);
  auto res = Execute({{"mission_id", "calc_001"}, {"code", "print(2 + 2)"}, {"timeout", 30}, {"metadata", {{"k", "v"}}}});
  CHECK(res->replies.empty());  // waiting, on no thread
  REQUIRE(deferrer.timer_seconds.size() == 1);
  CHECK(deferrer.timer_seconds[0] == 30 + kMissionQueueAllowanceSeconds);
  REQUIRE(link->assigned.size() == 1);
  const pb::Assignment& a = link->assigned[0];
  CHECK(a.task_type() == "python_script");
  CHECK(a.timeout_seconds() == 30);
  CHECK(a.owner() == "alice");
  CHECK(a.metadata().at("mission_id") == "calc_001");
  CHECK(json::parse(a.payload())["code"] == "print(2 + 2)");

  pb::TaskFinished f;
  f.set_status(pb::TASK_STATUS_SUCCESS);
  f.set_result("{}");
  f.set_stdout("4\n");
  f.set_execution_time_seconds(0.25);
  FinishWith("pc-1", epoch, a, f);
  REQUIRE(res->replies.size() == 1);
  CHECK(res->replies[0].status == 200);
  CHECK(Body(res) == json{{"mission_id", "calc_001"},
                          {"success", true},
                          {"stdout", "4\n"},
                          {"stderr", ""},
                          {"exit_code", 0},
                          {"execution_time", 0.25},
                          {"error", nullptr},
                          {"metadata", {{"task_id", a.task_id()}, {"device_id", "pc-1"}, {"status", "success"}, {"attempts", 1}}}});
  CHECK(*deferrer.timer_cancelled[0]);
}

TEST_CASE_METHOD(MissionRoutes, "Missions: a failed script answers 200 with success false and the task's error") {
  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = JoinWith("pc-1", {"python_script"}, link);
  auto res = Execute({{"mission_id", "bad"}, {"code", "raise SystemExit(3)"}});
  REQUIRE(link->assigned.size() == 1);
  pb::TaskFinished f;
  f.set_status(pb::TASK_STATUS_FAILED);
  f.set_error_message("exited with code 3");
  f.set_exit_code(3);
  f.set_stderr("boom\n");
  // Not permanent: a task would retry it, a mission (max_retries 0) ends now.
  FinishWith("pc-1", epoch, link->assigned[0], f);
  REQUIRE(res->replies.size() == 1);
  CHECK(res->replies[0].status == 200);
  json b = Body(res);
  CHECK(b["success"] == false);
  CHECK(b["error"] == "exited with code 3 (attempt 1 of 1; no retries left)");
  CHECK(b["exit_code"] == 3);
  CHECK(b["stderr"] == "boom\n");
}

TEST_CASE_METHOD(MissionRoutes, "Missions: no python_script worker 503 at once, nothing submitted") {
  auto none = Execute({{"mission_id", "nobody"}, {"code", "pass"}});
  REQUIRE(none->replies.size() == 1);
  CHECK(none->replies[0].status == 503);
  CHECK(Body(none)["error"] ==
        "no worker can run this mission now: no connected worker offers task type 'python_script' (workers need "
        "--allow python_script); nothing was submitted: send it with ?wait=0 to queue it until such a worker joins");
  CHECK(Body(none)["metadata"]["task_id"] == nullptr);
  auto link = std::make_shared<FakeLink>();
  JoinWith("pc-1", {"echo"}, link);  // online, but not for missions
  auto targeted = Execute({{"mission_id", "there"}, {"code", "pass"}, {"target_device_id", "pc-1"}});
  REQUIRE(targeted->replies.size() == 1);
  CHECK(targeted->replies[0].status == 503);
  CHECK(Body(targeted)["error"] ==
        "no worker can run this mission now: worker 'pc-1' is not connected or does not offer task type "
        "'python_script' (workers need --allow python_script); nothing was submitted: send it with ?wait=0 to "
        "queue it until such a worker joins");
  const json listed = Body(Call("GET", "/tasks", "", {{"type", "python_script"}}, "Bearer " + kAlice));
  CHECK(listed["tasks"].empty());
}

TEST_CASE_METHOD(MissionRoutes, "Missions: past the wait 202 with the task id, wait=0 at once, a client gone unwatches") {
  auto link = std::make_shared<FakeLink>();
  JoinWith("pc-1", {"python_script"}, link);  // one slot, and it never answers
  auto res = Execute({{"mission_id", "slow"}, {"code", "pass"}, {"timeout", 10}});
  REQUIRE(deferrer.timers.size() == 1);
  CHECK(deferrer.timer_seconds[0] == 310);
  deferrer.timers[0]();
  deferrer.RunPosted();
  REQUIRE(res->replies.size() == 1);
  CHECK(res->replies[0].status == 202);
  json b = Body(res);
  const std::string id = b["metadata"]["task_id"];
  CHECK(b["success"] == false);
  CHECK(b["error"] == "still assigned after 310 s: GET /tasks/" + id + "/wait");
  CHECK(b["metadata"]["status"] == "assigned");
  CHECK(b["exit_code"] == nullptr);

  auto now = Execute({{"mission_id", "quick"}, {"code", "pass"}}, kAlice, {{"wait", "0"}});
  REQUIRE(now->replies.size() == 1);
  CHECK(now->replies[0].status == 202);
  json n = Body(now);
  CHECK(n["error"] == "accepted, not waited for (wait=0): GET /tasks/" + std::string(n["metadata"]["task_id"]) + "/wait");
  CHECK(n["metadata"]["status"] == "queued");
  CHECK(deferrer.timers.size() == 1);  // no watch, no timer

  auto bad = Execute({{"mission_id", "q"}, {"code", "pass"}}, kAlice, {{"wait", "soon"}});
  CHECK(bad->replies[0].status == 400);
  CHECK(Body(bad)["error"] == "wait: expected 0 or 1, got 'soon'");

  auto left = Execute({{"mission_id", "left"}, {"code", "pass"}});
  REQUIRE(left->gone);
  left->gone();
  deferrer.RunPosted();
  CHECK(*deferrer.timer_cancelled[1]);
  std::string left_id;
  const json listed = Body(Call("GET", "/tasks", "", {{"type", "python_script"}}, "Bearer " + kAlice));
  for (const auto& t : listed["tasks"]) {
    if (t["metadata"]["mission_id"] == "left") left_id = t["task_id"];
  }
  REQUIRE_FALSE(left_id.empty());
  CHECK(Body(Call("DELETE", "/tasks/" + left_id, "", {}, "Bearer " + kAlice))["cancelled"] == true);
  deferrer.RunPosted();
  CHECK(left->replies.empty());
}

TEST_CASE_METHOD(MissionRoutes, "Missions: auth as POST /tasks, bad bodies 400, browser_interaction 503") {
  auto none = Call("POST", "/v1/missions/execute", json{{"mission_id", "m"}, {"code", "pass"}}.dump());
  CHECK(none->replies[0].status == 401);
  auto reader = Execute({{"mission_id", "m"}, {"code", "pass"}}, kReader);
  CHECK(reader->replies[0].status == 403);
  CHECK(Body(reader)["error"] == "token 'auditor' (role read) may not submit tasks: the read role is read-only");

  auto junk = Call("POST", "/v1/missions/execute", "{not json", {}, "Bearer " + kAlice);
  CHECK(junk->replies[0].status == 400);
  CHECK(Body(junk)["error"] == "body: not valid JSON");
  auto unknown = Execute({{"mission_id", "m"}, {"code", "pass"}, {"cmd", "ls"}});
  CHECK(unknown->replies[0].status == 400);
  CHECK(Body(unknown)["error"] == "cmd: unknown field");
  CHECK(Call("GET", "/v1/missions/execute", "", {}, "Bearer " + kAlice)->replies[0].status == 404);

  auto browser = Execute({{"mission_id", "b1"}, {"code", "pass"}, {"browser_interaction", true}});
  REQUIRE(browser->replies.size() == 1);
  CHECK(browser->replies[0].status == 503);
  json b = Body(browser);
  CHECK(b["mission_id"] == "b1");
  CHECK(b["success"] == false);
  CHECK(std::string(b["error"]).rfind("no worker can run browser tasks: ", 0) == 0);
  CHECK(b["metadata"]["task_id"] == nullptr);
  CHECK(std::string(b["error"]).find("--allow browser") != std::string::npos);
  CHECK(deferrer.timers.empty());  // nothing was submitted or watched
}

TEST_CASE_METHOD(MissionRoutes, "Missions: browser_interaction runs the script with the worker's browser") {
  auto link = std::make_shared<FakeLink>();
  JoinWith("pc-1", {"python_script", "browser"}, link);
  auto res = Execute({{"mission_id", "web"}, {"code", "pass"}, {"browser_interaction", true}, {"keep_alive", true}});
  CHECK(res->replies.empty());  // submitted and waiting
  REQUIRE(link->assigned.size() == 1);
  const pb::Assignment& a = link->assigned[0];
  CHECK(a.task_type() == "python_script");
  CHECK(json::parse(a.payload())["browser"] == json{{"profile", "default"}, {"keep_alive", true}});
}

TEST_CASE_METHOD(MissionRoutes, "Browser control: 503 until a worker offers browser, then a browser task") {
  auto reader = Browser({{"operation", "status"}}, kReader);
  CHECK(reader->replies[0].status == 403);
  auto bad = Browser({{"operation", "reboot"}});
  CHECK(bad->replies[0].status == 400);
  CHECK(Body(bad)["error"] == "operation: unknown operation 'reboot': expected start, stop or status");

  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = JoinWith("pc-1", {"python_script", "echo"}, link);
  auto none = Browser({{"operation", "start"}, {"port", 9222}});
  REQUIRE(none->replies.size() == 1);
  CHECK(none->replies[0].status == 503);
  CHECK(Body(none) == json{{"success", false},
                           {"is_running", false},
                           {"cdp_url", nullptr},
                           {"message", "no worker can run browser tasks: no connected worker offers task type 'browser' "
                                       "(start a worker with --allow browser and Chromium installed)"}});

  auto browser_link = std::make_shared<FakeLink>();
  const uint64_t browser_epoch = JoinWith("pc-2", {"browser"}, browser_link);
  auto elsewhere = Browser({{"operation", "status"}, {"target_device_id", "pc-1"}});
  CHECK(elsewhere->replies[0].status == 503);
  CHECK(Body(elsewhere)["message"] ==
        "no worker can run browser tasks: worker 'pc-1' is not connected or does not offer task type 'browser' "
        "(start a worker with --allow browser and Chromium installed)");
  CHECK(link->assigned.empty());

  auto started = Browser({{"operation", "start"}, {"port", 9222}, {"target_device_id", "pc-2"}});
  CHECK(started->replies.empty());
  REQUIRE(browser_link->assigned.size() == 1);
  const pb::Assignment& a = browser_link->assigned[0];
  CHECK(a.task_type() == "browser");
  CHECK(json::parse(a.payload()) == json{{"operation", "start"}, {"profile", "default"}});
  pb::TaskFinished f;
  f.set_status(pb::TASK_STATUS_SUCCESS);
  f.set_result(R"({"running": true, "cdp_url": "http://127.0.0.1:9222", "pid": 7})");
  FinishWith("pc-2", browser_epoch, a, f);
  REQUIRE(started->replies.size() == 1);
  CHECK(started->replies[0].status == 200);
  CHECK(Body(started) == json{{"success", true},
                              {"is_running", true},
                              {"cdp_url", "http://127.0.0.1:9222"},
                              {"message", "browser running at http://127.0.0.1:9222"},
                              {"task_id", a.task_id()}});
  (void)epoch;
}

}  // namespace
}  // namespace rc::coordinator::http
