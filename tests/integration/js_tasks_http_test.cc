// Published JavaScript tasks over HTTP (DESIGN.md "JavaScript tasks"): publish, unchanged,
// list, show with code, run (the stored payload resolved), remove, and every refusal, with the
// same status and message the C++ SDK (gRPC) gets for the same mistake.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/client.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

using nlohmann::json;

const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kAlice = "alice-token-0123456789abcdef";
const std::string kBob = "bob-token-0123456789abcdef00";
const std::string kReader = "read-token-0123456789abcdef0";

CoordinatorConfig WithTokens() {
  CoordinatorConfig c = Cluster::FastConfig();
  c.client_tokens = {"admin " + kAdmin + " root", "submit " + kAlice + " alice", "submit " + kBob + " bob",
                     "read " + kReader + " auditor"};
  return c;
}

// A module with the JSDoc the coordinator reads; `body` makes versions differ.
std::string Greet(const std::string& body = "return {hello: input.name};") {
  return absl::StrCat(R"(/**
 * @task greet
 * @description Says hello
 *   to whoever asks.
 * @param {string} input.name - who to greet
 * @param {boolean} [input.loud] - shout it
 * @returns {Object} the greeting
 */
module.exports = async function execute(input, context) { )",
                      body, " };\n");
}

struct Http {
  explicit Http(Cluster& c) : client("127.0.0.1", c.http_port()) { client.set_read_timeout(20, 0); }
  httplib::Result Call(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    if (method == "GET") return client.Get(path.c_str(), h);
    if (method == "DELETE") return client.Delete(path.c_str(), h);
    return client.Post(path.c_str(), h, body, "application/json");
  }
  // POST /js-tasks with {"code": code, "name"?: name}.
  httplib::Result Publish(const std::string& token, const std::string& code, const std::string& name = "") {
    json body = {{"code", code}};
    if (!name.empty()) body["name"] = name;
    return Call("POST", "/js-tasks", token, body.dump());
  }
  httplib::Client client;
};

json Body(const httplib::Result& r) {
  REQUIRE(r);
  INFO(r->body);
  return json::parse(r->body);
}

std::string Error(const httplib::Result& r) { return Body(r).value("error", std::string("(no error)")); }

client::ClientOptions As(Cluster& c, const std::string& token) {
  return client::ClientOptions{c.address(), absl::Seconds(10), nullptr, token};
}

}  // namespace

TEST_CASE("HTTP js-tasks: publish, unchanged, a new version, list, show with code, remove") {
  Cluster cluster(WithTokens());
  Http http(cluster);

  auto first = http.Publish(kAlice, Greet());
  json p1 = Body(first);
  CHECK(first->status == 201);
  CHECK(p1["unchanged"] == false);
  const json& t1 = p1["task"];
  CHECK(t1["name"] == "greet");
  CHECK(t1["version"] == 1);
  CHECK(t1["owner"] == "alice");
  CHECK(t1["sha256"].get<std::string>().size() == 64);
  CHECK_THAT(t1["description"].get<std::string>(), Catch::StartsWith("Says hello") && Catch::Contains("to whoever asks."));
  REQUIRE(t1["params"].size() == 2);
  CHECK(t1["params"][0] == json{{"name", "input.name"}, {"type", "string"}, {"description", "who to greet"},
                                {"optional", false}});
  CHECK(t1["params"][1]["optional"] == true);
  CHECK(t1["returns"] == "{Object} the greeting");
  CHECK(t1["code_bytes"] == Greet().size());
  CHECK(t1["created_at_ms"].get<int64_t>() > 0);
  CHECK_FALSE(t1.contains("code"));  // the publish answer leaves the code out

  auto same = http.Publish(kAlice, Greet());
  json p2 = Body(same);
  CHECK(same->status == 200);
  CHECK(p2["unchanged"] == true);
  CHECK(p2["task"]["version"] == 1);
  CHECK(p2["task"]["sha256"] == t1["sha256"]);

  auto second = http.Publish(kAlice, Greet("return {hi: input.name};"));
  CHECK(second->status == 201);
  CHECK(Body(second)["task"]["version"] == 2);
  // Under another name than its @task.
  auto renamed = http.Publish(kAlice, Greet(), "greet.copy");
  CHECK(renamed->status == 201);
  CHECK(Body(renamed)["task"]["name"] == "greet.copy");

  // The reader may list and show.
  json list = Body(http.Call("GET", "/js-tasks", kReader));
  REQUIRE(list["tasks"].size() == 2);
  CHECK(list["tasks"][0]["name"] == "greet");  // by name
  CHECK(list["tasks"][0]["version"] == 2);
  CHECK(list["tasks"][0]["versions"] == 2);
  CHECK_FALSE(list["tasks"][0].contains("code"));
  CHECK(list["tasks"][1]["name"] == "greet.copy");

  json latest = Body(http.Call("GET", "/js-tasks/greet", kReader));
  CHECK(latest["version"] == 2);
  CHECK(latest["code"] == Greet("return {hi: input.name};"));
  json v1 = Body(http.Call("GET", "/js-tasks/greet?version=1", kReader));
  CHECK(v1["version"] == 1);
  CHECK(v1["code"] == Greet());
  CHECK(v1["sha256"] == t1["sha256"]);

  // Removing one version keeps the other; removing the name removes the rest.
  CHECK(Body(http.Call("DELETE", "/js-tasks/greet?version=1", kAlice)) == json{{"removed_versions", 1}});
  CHECK(http.Call("GET", "/js-tasks/greet?version=1", kAlice)->status == 404);
  CHECK(Body(http.Call("GET", "/js-tasks/greet", kAlice))["version"] == 2);
  CHECK(Body(http.Call("DELETE", "/js-tasks/greet", kAlice)) == json{{"removed_versions", 1}});
  CHECK(http.Call("GET", "/js-tasks/greet", kAlice)->status == 404);
  // The admin may remove anyone's name.
  CHECK(Body(http.Call("DELETE", "/js-tasks/greet.copy", kAdmin)) == json{{"removed_versions", 1}});
  CHECK(Body(http.Call("GET", "/js-tasks", kAdmin))["tasks"].empty());
}

TEST_CASE("HTTP js-tasks: a run is a js task whose stored payload holds the resolved code") {
  Cluster cluster(WithTokens());
  Http http(cluster);
  const std::string sha1 = Body(http.Publish(kAlice, Greet()))["task"]["sha256"];
  REQUIRE(http.Publish(kAlice, Greet("return 2;"))->status == 201);

  auto run = http.Call("POST", "/js-tasks/greet/run", kAlice,
                       R"({"input":{"name":"ada"},"version":1,"memory_mb":96,"priority":"high",
                           "requirements":{"required_tags":["nowhere"],"timeout_seconds":30},
                           "metadata":{"why":"test"}})");
  json accepted = Body(run);
  CHECK(run->status == 201);
  CHECK(accepted["status"] == "queued");
  const std::string id = accepted["task_id"];
  json t = Body(http.Call("GET", "/tasks/" + id, kAlice));
  CHECK(t["task_type"] == "js");
  CHECK(t["owner"] == "alice");
  CHECK(t["priority"] == "high");
  CHECK(t["metadata"]["why"] == "test");
  CHECK(t["requirements"]["timeout_seconds"] == 30);
  const json& payload = t["payload"];
  CHECK(payload["name"] == "greet");
  CHECK(payload["version"] == 1);
  CHECK(payload["sha256"] == sha1);
  CHECK(payload["code"] == Greet());
  CHECK(payload["input"] == json{{"name", "ada"}});
  CHECK(payload["memory_mb"] == 96);

  // No body: the latest version on {}. A task token's role (submit) and the reader's differ.
  auto bare = http.Call("POST", "/js-tasks/greet/run", kBob);
  CHECK(bare->status == 201);
  json b = Body(http.Call("GET", "/tasks/" + Body(bare)["task_id"].get<std::string>(), kBob));
  CHECK(b["payload"]["version"] == 2);
  CHECK(b["payload"]["input"] == json::object());
  CHECK(b["owner"] == "bob");  // anyone who may submit may run a published task
  CHECK(http.Call("POST", "/js-tasks/greet/run", kReader, "{}")->status == 403);

  // ?wait=S answers with the task once it ended or after S seconds (no worker takes js here).
  auto waited = http.Call("POST", "/js-tasks/greet/run?wait=0.2", kAlice, R"({"input":[1,2]})");
  json w = Body(waited);
  CHECK(waited->status == 200);
  CHECK(w["task_type"] == "js");
  CHECK(w["status"] == "queued");
  CHECK(w["payload"]["input"] == json::array({1, 2}));
  auto bad_wait = http.Call("POST", "/js-tasks/greet/run?wait=forever", kAlice, "{}");
  CHECK(bad_wait->status == 400);
  CHECK(Error(bad_wait) == "wait: expected seconds in (0, 300]");

  // A task that resolved its code keeps it when the name is removed.
  REQUIRE(http.Call("DELETE", "/js-tasks/greet", kAlice)->status == 200);
  CHECK(Body(http.Call("GET", "/tasks/" + id, kAlice))["payload"]["code"] == Greet());
  auto gone = http.Call("POST", "/js-tasks/greet/run", kAlice, "{}");
  CHECK(gone->status == 404);
  CHECK(Error(gone) == "payload.name: no published task 'greet'");
}

TEST_CASE("HTTP js-tasks refuse bad requests, naming what is wrong") {
  Cluster cluster(WithTokens());
  Http http(cluster);
  REQUIRE(http.Publish(kAlice, Greet())->status == 201);

  auto no_tag = http.Publish(kAlice, "module.exports = () => 1;\n");
  CHECK(no_tag->status == 400);
  CHECK(Error(no_tag) == "code: no JSDoc @task tag (start the file with /** @task NAME ... */)");
  auto bad_name = http.Publish(kAlice, Greet(), "bad name");
  CHECK(bad_name->status == 400);
  CHECK_THAT(Error(bad_name), Catch::StartsWith("name: "));
  auto not_json = http.Call("POST", "/js-tasks", kAlice, "{\"code\": ");
  CHECK(not_json->status == 400);
  CHECK(Error(not_json) == "body: not valid JSON");
  auto no_code = http.Call("POST", "/js-tasks", kAlice, R"({"name":"x"})");
  CHECK(no_code->status == 400);
  CHECK(Error(no_code) == "code: required, the module's text");
  auto unknown = http.Call("POST", "/js-tasks", kAlice, R"({"code":"x","version":3})");
  CHECK(unknown->status == 400);
  CHECK(Error(unknown) == "version: unknown field (expected code and name)");
  auto code_type = http.Call("POST", "/js-tasks", kAlice, R"({"code":42})");
  CHECK(Error(code_type) == "code: expected a string, the module's text");

  // Names that are nobody's.
  auto missing = http.Call("GET", "/js-tasks/nothing", kAlice);
  CHECK(missing->status == 404);
  CHECK_THAT(Error(missing), Catch::Contains("nothing"));
  CHECK(http.Call("GET", "/js-tasks/greet?version=9", kAlice)->status == 404);
  CHECK(http.Call("DELETE", "/js-tasks/nothing", kAlice)->status == 404);
  auto run_missing = http.Call("POST", "/js-tasks/nothing/run", kAlice, "{}");
  CHECK(run_missing->status == 404);
  CHECK(Error(run_missing) == "payload.name: no published task 'nothing'");
  auto bad_version = http.Call("GET", "/js-tasks/greet?version=first", kAlice);
  CHECK(bad_version->status == 400);
  CHECK(Error(bad_version) == "version: expected a version number 1..2147483647, got 'first'");
  CHECK(Error(http.Call("DELETE", "/js-tasks/greet?version=0", kAlice)) ==
        "version: expected a version number 1..2147483647, got '0'");

  // Another owner's name; the reader; no token.
  auto theirs = http.Publish(kBob, Greet("return 3;"));
  CHECK(theirs->status == 403);
  CHECK_THAT(Error(theirs), Catch::Contains("alice"));
  auto remove_theirs = http.Call("DELETE", "/js-tasks/greet", kBob);
  CHECK(remove_theirs->status == 403);
  CHECK_THAT(Error(remove_theirs), Catch::Contains("alice"));
  CHECK(http.Publish(kReader, Greet("return 4;"))->status == 403);
  auto anonymous = http.Call("GET", "/js-tasks", "");
  CHECK(anonymous->status == 401);
  CHECK(anonymous->get_header_value("WWW-Authenticate") == "Bearer");
  CHECK(Body(http.Call("GET", "/js-tasks/greet", kAlice))["version"] == 1);  // nothing changed

  // A run's body.
  auto typed = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"task_type":"echo"})");
  CHECK(typed->status == 400);
  CHECK(Error(typed) == "task_type: set by the route: a published task runs as task type js");
  auto with_payload = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"payload":{}})");
  CHECK(Error(with_payload) == "payload: built from input, version and memory_mb; give those instead");
  auto run_version = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"version":"1"})");
  CHECK(run_version->status == 400);
  CHECK(Error(run_version) == "version: expected a version number 1..2147483647, got \"1\"");
  auto stray = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"inputs":{}})");
  CHECK(stray->status == 400);
  CHECK(Error(stray) == "inputs: unknown field");
  auto bad_priority = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"priority":"asap"})");
  CHECK(Error(bad_priority) == "priority: unknown priority 'asap' (expected low, normal, high or urgent)");
  auto big_memory = http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"memory_mb":4096})");
  CHECK(big_memory->status == 400);
  CHECK_THAT(Error(big_memory), Catch::Contains("memory_mb"));
  CHECK(Error(http.Call("POST", "/js-tasks/greet/run", kAlice, "[1]")) ==
        "body: expected an object {\"input\"?, \"version\"?, \"memory_mb\"?, ...}");

  // Not routes: a method the path does not take.
  CHECK(http.client.Put("/js-tasks/greet", "{}", "application/json")->status == 404);
  CHECK(http.Call("GET", "/js-tasks/greet/run", kAlice)->status == 404);
}

TEST_CASE("HTTP js-tasks and the C++ SDK (gRPC) refuse the same mistakes alike") {
  Cluster cluster(WithTokens());
  Http http(cluster);
  client::Client alice(As(cluster, kAlice));
  client::Client bob(As(cluster, kBob));
  client::Client reader(As(cluster, kReader));
  REQUIRE(alice.PublishJsTask(Greet()).ok());

  struct Case {
    std::string name;
    absl::Status grpc;
    httplib::Result http;
  };
  Case cases[] = {
      {"no @task", alice.PublishJsTask("module.exports = () => 1;").status(),
       http.Publish(kAlice, "module.exports = () => 1;")},
      {"a bad name", alice.PublishJsTask(Greet(), "-x").status(), http.Publish(kAlice, Greet(), "-x")},
      {"another owner's name", bob.PublishJsTask(Greet("return 5;")).status(), http.Publish(kBob, Greet("return 5;"))},
      {"another owner removes", bob.RemoveJsTask("greet").status(), http.Call("DELETE", "/js-tasks/greet", kBob)},
      {"the reader publishes", reader.PublishJsTask(Greet("return 6;")).status(),
       http.Publish(kReader, Greet("return 6;"))},
      {"an unknown name", alice.GetJsTask("nothing").status(), http.Call("GET", "/js-tasks/nothing", kAlice)},
      {"an unknown version", alice.GetJsTask("greet", 7).status(), http.Call("GET", "/js-tasks/greet?version=7", kAlice)},
      {"removing an unknown name", alice.RemoveJsTask("nothing").status(),
       http.Call("DELETE", "/js-tasks/nothing", kAlice)},
      {"running an unknown name", alice.RunJsTask("nothing", "{}").status(),
       http.Call("POST", "/js-tasks/nothing/run", kAlice, "{}")},
      {"running an unknown version", alice.RunJsTask("greet", "{}", {}, 4).status(),
       http.Call("POST", "/js-tasks/greet/run", kAlice, R"({"version":4})")},
  };
  for (Case& c : cases) {
    INFO(c.name);
    REQUIRE(c.http);
    CHECK_FALSE(c.grpc.ok());
    const int want = c.grpc.code() == absl::StatusCode::kInvalidArgument    ? 400
                     : c.grpc.code() == absl::StatusCode::kPermissionDenied ? 403
                     : c.grpc.code() == absl::StatusCode::kNotFound         ? 404
                                                                            : -1;
    CHECK(c.http->status == want);
    CHECK(Error(c.http) == c.grpc.message());
  }
}

}  // namespace rc::testing
