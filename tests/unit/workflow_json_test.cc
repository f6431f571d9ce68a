// Issue 14 surfaces: `after` and `parent_close` in task JSON (in and out), the task's
// place in its tree in the task view, and GET /tasks?parent= through the HTTP routes.
#include <catch2/catch.hpp>

#include "common/json_view.h"
#include "common/task_spec_json.h"
#include "coordinator/http/routes.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc {
namespace {

namespace pb = ::retire_cluster::v1;
using nlohmann::json;

absl::StatusOr<pb::TaskSpec> Parse(const char* text) { return TaskSpecFromJson(json::parse(text)); }

std::string Error(const char* text) {
  absl::StatusOr<pb::TaskSpec> s = Parse(text);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

TEST_CASE("Task JSON: after takes task ids and task_id or after_index objects and parent_close") {
  absl::StatusOr<pb::TaskSpec> s = Parse(R"({"task_type": "echo", "after": ["task-a",
      {"task_id": "task-b", "condition": "any"}, {"task_id": "task-c", "condition": "notok"},
      {"after_index": 2}, {"task_id": "task-d", "condition": null}], "parent_close": "abandon"})");
  REQUIRE(s.ok());
  REQUIRE(s->after_size() == 5);
  CHECK(s->after(0).task_id() == "task-a");
  CHECK(s->after(0).condition() == pb::DEPENDENCY_CONDITION_UNSPECIFIED);  // the core reads it as ok
  CHECK(s->after(1).task_id() == "task-b");
  CHECK(s->after(1).condition() == pb::DEPENDENCY_CONDITION_ANY);
  CHECK(s->after(2).condition() == pb::DEPENDENCY_CONDITION_NOTOK);
  CHECK(s->after(3).has_after_index());
  CHECK(s->after(3).after_index() == 2);
  CHECK(s->after(3).task_id().empty());
  CHECK_FALSE(s->after(4).has_after_index());
  CHECK(s->parent_close() == pb::PARENT_CLOSE_ABANDON);
  CHECK(Parse(R"({"task_type": "echo", "parent_close": "cancel"})")->parent_close() == pb::PARENT_CLOSE_CANCEL);
  CHECK(Parse(R"({"task_type": "echo", "after": null})")->after_size() == 0);
}

TEST_CASE("Task JSON: bad after and parent_close are refused naming the entry and the problem") {
  CHECK(Error(R"({"task_type": "echo", "after": ["task-a", {"task_id": "task-b", "condition": "x"}]})") ==
        "after[1].condition: expected ok, any or notok, got 'x'");
  CHECK(Error(R"({"task_type": "echo", "after": "task-a"})") ==
        R"(after: expected an array of task ids or {"task_id", "condition"} objects)");
  CHECK(Error(R"({"task_type": "echo", "after": [7]})") ==
        R"(after[0]: expected a task id or an object {"task_id", "condition"})");
  CHECK(Error(R"({"task_type": "echo", "after": [""]})") == "after[0]: expected a task id, got an empty string");
  CHECK(Error(R"({"task_type": "echo", "after": [{"condition": "ok"}]})") ==
        "after[0]: expected exactly one of task_id and after_index");
  CHECK(Error(R"({"task_type": "echo", "after": [{"task_id": "t", "after_index": 0}]})") ==
        "after[0]: expected exactly one of task_id and after_index");
  CHECK(Error(R"({"task_type": "echo", "after": [{"task_id": "t", "when": "ok"}]})") == "after[0].when: unknown field");
  CHECK(Error(R"({"task_type": "echo", "after": [{"task_id": 5}]})") == "after[0].task_id: expected a string");
  CHECK(Error(R"({"task_type": "echo", "after": [{"after_index": -1}]})") ==
        "after[0].after_index: must be 0..9999, got -1");
  CHECK(Error(R"({"task_type": "echo", "after": [{"after_index": 4294967296}]})") ==
        "after[0].after_index: must be 0..9999, got 4294967296");
  CHECK(Error(R"({"task_type": "echo", "after": [{"after_index": 1.5}]})") ==
        "after[0].after_index: expected an integer");
  CHECK(Error(R"({"task_type": "echo", "after": [{"task_id": "t", "condition": 1}]})") ==
        "after[0].condition: expected a string");
  CHECK(Error(R"({"task_type": "echo", "parent_close": "never"})") ==
        "parent_close: expected cancel or abandon, got 'never'");
}

TEST_CASE("The task view shows after and parent_close and the place in the tree but never the token digest") {
  pb::Task t;
  t.set_task_id("task-c");
  t.mutable_spec()->set_task_type("echo");
  pb::Dependency* d = t.mutable_spec()->add_after();
  d->set_task_id("task-x");
  d->set_condition(pb::DEPENDENCY_CONDITION_NOTOK);
  t.mutable_spec()->add_after()->set_task_id("task-y");  // UNSPECIFIED shows as ok
  t.mutable_spec()->set_parent_close(pb::PARENT_CLOSE_ABANDON);
  t.set_parent_task_id("task-b");
  t.set_root_task_id("task-a");
  t.set_depth(2);
  t.add_ancestor_task_ids("task-a");
  t.add_ancestor_task_ids("task-b");
  t.add_waiting_for("task-y");
  t.set_attempt_token_sha256(std::string(32, '\x01'));
  Json j = TaskToJson(t);
  CHECK(j["after"] == Json::parse(R"([{"task_id": "task-x", "condition": "notok"},
                                      {"task_id": "task-y", "condition": "ok"}])"));
  CHECK(j["parent_close"] == "abandon");
  CHECK(j["parent_task_id"] == "task-b");
  CHECK(j["root_task_id"] == "task-a");
  CHECK(j["depth"] == 2);
  CHECK(j["ancestor_task_ids"] == Json::parse(R"(["task-a", "task-b"])"));
  CHECK(j["waiting_for"] == Json::parse(R"(["task-y"])"));
  CHECK_FALSE(j.contains("attempt_token_sha256"));
  CHECK(j.dump().find("AQEB") == std::string::npos);  // nor its base64 anywhere

  // What the view shows parses back as the same dependencies.
  json resubmit = {{"task_type", "echo"}, {"after", j["after"]}, {"parent_close", j["parent_close"]}};
  absl::StatusOr<pb::TaskSpec> back = TaskSpecFromJson(resubmit);
  REQUIRE(back.ok());
  CHECK(back->after(0).condition() == pb::DEPENDENCY_CONDITION_NOTOK);
  CHECK(back->after(1).condition() == pb::DEPENDENCY_CONDITION_OK);
  CHECK(back->parent_close() == pb::PARENT_CLOSE_ABANDON);

  pb::Task top;
  top.set_task_id("task-a");
  top.set_root_task_id("task-a");
  Json k = TaskToJson(top);
  for (const char* omitted : {"after", "parent_close", "parent_task_id", "ancestor_task_ids", "waiting_for"}) {
    INFO(omitted);
    CHECK_FALSE(k.contains(omitted));
  }
  CHECK(k["root_task_id"] == "task-a");
  CHECK(k["depth"] == 0);
}

class NoDeferrer final : public coordinator::http::Deferrer {
 public:
  void Post(std::function<void()> fn) override { fn(); }
  std::function<void()> After(double, std::function<void()>) override { return [] {}; }
};

class Capture final : public coordinator::http::Responder {
 public:
  void Reply(coordinator::http::HttpResponse r) override { replies.push_back(std::move(r)); }
  void OnGone(std::function<void()>) override {}
  std::vector<coordinator::http::HttpResponse> replies;
};

TEST_CASE("HTTP: GET /tasks with parent asks for that task's children only") {
  coordinator::Fixture f;
  coordinator::ClientApi api(&f.core, nullptr);
  NoDeferrer deferrer;
  coordinator::http::BridgeRoutes routes(&api, &deferrer, {});
  const std::string a = f.Submit("echo");
  f.Submit("echo");
  auto list = [&](std::vector<std::pair<std::string, std::string>> query) {
    coordinator::http::HttpRequest r;
    r.method = "GET";
    r.path = "/tasks";
    r.query = std::move(query);
    r.peer = "127.0.0.1";
    auto c = std::make_shared<Capture>();
    routes.Handle(r, c);
    REQUIRE(c->replies.size() == 1);
    return c->replies[0];
  };
  CHECK(json::parse(list({}).body)["tasks"].size() == 2);
  // Top-level tasks are nobody's children.
  coordinator::http::HttpResponse r = list({{"parent", a}});
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["tasks"].empty());
  r = list({{"parent", ""}});
  CHECK(r.status == 400);
  CHECK(json::parse(r.body)["error"] == "parent: expected a task id");
}

}  // namespace
}  // namespace rc
