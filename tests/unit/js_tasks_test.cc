// Published JavaScript tasks: the registry (coordinator/core/js_tasks.h), the js payload
// rules (js_payload.h) and the client API's calls and resolution (api/js_task_api.cc).
#include <catch2/catch.hpp>

#include "common/json_view.h"
#include "coordinator/api/client_api.h"
#include "coordinator/core/js_payload.h"
#include "coordinator/core/js_tasks.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

const JsPublisher kAlice{"alice", false};
const JsPublisher kBob{"bob", false};
const JsPublisher kAdmin{"root", true};

std::string Module(const std::string& name, const std::string& body = "return input;") {
  return "/**\n * @task " + name + "\n * @description Echoes.\n * @param {object} [input] - anything\n"
         " * @returns {object} the input\n */\nmodule.exports = async function execute(input) { " + body + " };\n";
}

// A store whose writes fail while `broken` is set.
class FlakyStore final : public JsTaskStore {
 public:
  absl::StatusOr<JsTaskCatalog> Load() override { return inner.Load(); }
  absl::StatusOr<std::string> ReadCode(const std::string& n, int32_t v) override { return inner.ReadCode(n, v); }
  absl::Status Add(const pb::JsTask& meta, const std::string& code, const JsTaskName& name) override {
    if (broken) return absl::UnavailableError("disk full");
    return inner.Add(meta, code, name);
  }
  absl::Status Remove(const std::string& name, int32_t version) override {
    if (broken) return absl::UnavailableError("disk full");
    return inner.Remove(name, version);
  }
  MemoryJsTaskStore inner;
  bool broken = false;
};

struct RegistryFixture {
  FakeClock clock;
  FlakyStore store;
  JsTaskRegistry registry{&store, &clock, 1 << 20};

  pb::JsTask Publish(const std::string& code, const JsPublisher& by = kAlice, bool unchanged = false) {
    absl::StatusOr<JsTaskRegistry::Published> p = registry.Publish(code, "", by);
    REQUIRE(p.ok());
    CHECK(p->unchanged == unchanged);
    return p->task;
  }
  absl::StatusOr<Json> Resolve(const std::string& payload, const std::string& type = "js") {
    pb::TaskSpec spec;
    spec.set_task_type(type);
    spec.set_payload(payload);
    if (absl::Status s = registry.Resolve(&spec); !s.ok()) return s;
    return Json::parse(spec.payload());
  }
};

TEST_CASE_METHOD(RegistryFixture, "Publish stores version 1 with sha256, JSDoc and owner, the same code again is unchanged") {
  const std::string code = Module("echo-js");
  pb::JsTask t = Publish(code);
  CHECK(t.name() == "echo-js");
  CHECK(t.version() == 1);
  CHECK(t.sha256() == Sha256Hex(code));
  CHECK(t.sha256().size() == 64);
  CHECK(t.description() == "Echoes.");
  REQUIRE(t.params_size() == 1);
  CHECK(t.params(0).name() == "input");
  CHECK(t.params(0).type() == "object");
  CHECK(t.params(0).optional());
  CHECK(t.params(0).description() == "anything");
  CHECK(t.returns() == "{object} the input");
  CHECK(t.owner() == "alice");
  CHECK(t.created_at_ms() == clock.NowMs());
  CHECK(t.code_bytes() == static_cast<int64_t>(code.size()));
  CHECK(t.code().empty());  // the answer leaves the code out
  CHECK(t.versions() == 1);

  clock.Advance(absl::Seconds(5));
  pb::JsTask same = Publish(code, kAlice, /*unchanged=*/true);
  CHECK(same.version() == 1);
  CHECK(same.created_at_ms() == t.created_at_ms());
  pb::JsTask next = Publish(Module("echo-js", "return 2;"));
  CHECK(next.version() == 2);
  CHECK(next.versions() == 2);
  CHECK(next.created_at_ms() == t.created_at_ms() + 5000);
  // The request's name wins over @task; a default joins the param's description.
  absl::StatusOr<JsTaskRegistry::Published> renamed = registry.Publish(
      "/** @task ignored\n * @param {number} [n=3] - count */ module.exports = () => 1;", "other.name_1", kAlice);
  REQUIRE(renamed.ok());
  CHECK(renamed->task.name() == "other.name_1");
  CHECK(renamed->task.params(0).description() == "count (default: 3)");
}

TEST_CASE_METHOD(RegistryFixture, "Publish refuses bad code and names, each naming the field") {
  auto refused = [&](const std::string& code, const std::string& name = "") {
    absl::StatusOr<JsTaskRegistry::Published> p = registry.Publish(code, name, kAlice);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(p.status().message());
  };
  CHECK(refused("") == "code: must not be empty");
  CHECK(refused("module.exports = () => 1;") ==
        "code: no JSDoc @task tag (start the file with /** @task NAME ... */)");
  std::string big = Module("big");
  big.append(kMaxJsCodeBytes + 1 - big.size(), ' ');
  CHECK(refused(big) == "code: 524289 bytes, over the limit of 524288 (512 KiB)");
  big.pop_back();
  CHECK(registry.Publish(big, "", kAlice).ok());  // exactly 512 KiB is fine
  CHECK(refused(Module("bad-utf8") + "// \xC3\x28") ==
        "code: not valid UTF-8 (at byte " + std::to_string(Module("bad-utf8").size() + 3) + ")");
  CHECK(refused(Module("surrogate") + "\xED\xA0\x80").rfind("code: not valid UTF-8", 0) == 0);
  CHECK(refused("/** @task */ x") == "name: the JSDoc @task tag names no task: write /** @task NAME */ or give a name");
  CHECK(refused(Module("-dash")) == "name: '-dash' must not start with '.' or '-'");
  CHECK(refused(Module(".dot")) == "name: '.dot' must not start with '.' or '-'");
  CHECK(refused(Module("x"), "a/b") == "name: 'a/b' may only hold letters, digits, '.', '_' and '-'");
  CHECK(refused(Module("x"), std::string(101, 'a')) == "name: longer than 100 characters");
  CHECK(registry.Publish(Module("x"), std::string(100, 'a'), kAlice).ok());
  CHECK(registry.List().size() == 2);  // "big" and the 100-character name; nothing else was stored
}

TEST_CASE_METHOD(RegistryFixture, "A name belongs to its first publisher, an admin may publish and remove it") {
  Publish(Module("owned"));
  absl::StatusOr<JsTaskRegistry::Published> bob = registry.Publish(Module("owned", "return 'bob';"), "", kBob);
  REQUIRE(bob.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(bob.status().message() ==
        "name: published task 'owned' belongs to 'alice' (its first publisher); only it or an admin may publish or "
        "remove it");
  // Even identical code is refused: the owner check comes first.
  CHECK(registry.Publish(Module("owned"), "", kBob).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(registry.Remove("owned", 0, kBob).status().code() == absl::StatusCode::kPermissionDenied);
  pb::JsTask by_admin = Publish(Module("owned", "return 'root';"), kAdmin);
  CHECK(by_admin.version() == 2);
  CHECK(by_admin.owner() == "alice");  // the name stays alice's
  CHECK(registry.Remove("owned", 1, kAdmin).value() == 1);
  // Unnamed (no client tokens) publishers own their names too.
  Publish(Module("local"), JsPublisher{"", true});
  CHECK_THAT(std::string(registry.Publish(Module("local", "return 1;"), "", kBob).status().message()),
             Catch::Contains("belongs to the unnamed local caller"));
}

TEST_CASE_METHOD(RegistryFixture, "List shows the latest per name, Get gives a version with its code, errors name it") {
  Publish(Module("b-task"));
  const std::string a1 = Module("a-task");
  const std::string a2 = Module("a-task", "return 2;");
  Publish(a1);
  Publish(a2);
  std::vector<pb::JsTask> list = registry.List();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name() == "a-task");
  CHECK(list[0].version() == 2);
  CHECK(list[0].versions() == 2);
  CHECK(list[0].code().empty());
  CHECK(list[1].name() == "b-task");
  CHECK(list[1].versions() == 1);

  absl::StatusOr<pb::JsTask> latest = registry.Get("a-task", 0);
  REQUIRE(latest.ok());
  CHECK(latest->version() == 2);
  CHECK(latest->code() == a2);
  CHECK(latest->versions() == 2);
  absl::StatusOr<pb::JsTask> first = registry.Get("a-task", 1);
  REQUIRE(first.ok());
  CHECK(first->code() == a1);
  CHECK(first->sha256() == Sha256Hex(a1));

  CHECK(registry.Get("nope", 0).status().code() == absl::StatusCode::kNotFound);
  CHECK(registry.Get("nope", 0).status().message() == "no published task 'nope'");
  CHECK(registry.Get("a-task", 9).status().message() == "published task 'a-task' has no version 9");
  CHECK(registry.Get("a-task", -1).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(registry.Get("", 0).status().message() == "name: must not be empty");
}

TEST_CASE_METHOD(RegistryFixture, "Remove: one version or all, numbers are never reused, the name stays its owner's") {
  Publish(Module("gone"));
  Publish(Module("gone", "return 2;"));
  REQUIRE(registry.Remove("gone", 2, kAlice).value() == 1);
  CHECK(registry.Get("gone", 0)->version() == 1);
  CHECK(registry.Get("gone", 0)->code() == Module("gone"));  // the new latest's code is read back
  CHECK(registry.Remove("gone", 2, kAlice).status().message() == "published task 'gone' has no version 2");
  pb::JsTask v3 = Publish(Module("gone", "return 3;"));
  CHECK(v3.version() == 3);  // not 2 again
  CHECK(v3.versions() == 2);
  REQUIRE(registry.Remove("gone", 0, kAlice).value() == 2);
  CHECK(registry.List().empty());
  CHECK(registry.Get("gone", 0).status().code() == absl::StatusCode::kNotFound);
  CHECK(registry.Remove("gone", 0, kAlice).status().code() == absl::StatusCode::kNotFound);
  CHECK(registry.Publish(Module("gone"), "", kBob).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Publish(Module("gone")).version() == 4);

  // A registry loaded from the same store sees the same names, owners and next numbers.
  JsTaskRegistry reloaded(&store, &clock, 1 << 20);
  REQUIRE(reloaded.Load().ok());
  REQUIRE(reloaded.List().size() == 1);
  CHECK(reloaded.List()[0].version() == 4);
  CHECK(reloaded.Get("gone", 4)->code() == Module("gone"));
  CHECK(reloaded.Publish(Module("gone", "return 5;"), "", kBob).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(reloaded.Publish(Module("gone", "return 5;"), "", kAlice)->task.version() == 5);
}

TEST_CASE_METHOD(RegistryFixture, "A failed store write changes nothing") {
  Publish(Module("steady"));
  store.broken = true;
  absl::StatusOr<JsTaskRegistry::Published> p = registry.Publish(Module("steady", "return 2;"), "", kAlice);
  CHECK(p.status().code() == absl::StatusCode::kUnavailable);
  CHECK(registry.Remove("steady", 0, kAlice).status().code() == absl::StatusCode::kUnavailable);
  store.broken = false;
  CHECK(registry.List().size() == 1);
  CHECK(registry.List()[0].version() == 1);
  CHECK(Publish(Module("steady", "return 2;")).version() == 2);
}

TEST_CASE_METHOD(RegistryFixture, "Resolve: a name becomes its code, version and sha256, the payload rules name the field") {
  const std::string v1 = Module("res");
  const std::string v2 = Module("res", "return 2;");
  Publish(v1);
  Publish(v2);
  absl::StatusOr<Json> latest = Resolve(R"({"name": "res", "input": {"x": [1, 2]}, "memory_mb": 128})");
  REQUIRE(latest.ok());
  CHECK(latest->dump() == Json{{"name", "res"}, {"version", 2}, {"sha256", Sha256Hex(v2)}, {"code", v2},
                               {"input", {{"x", {1, 2}}}}, {"memory_mb", 128}}
                              .dump());
  absl::StatusOr<Json> pinned = Resolve(R"({"name": "res", "version": 1})");
  REQUIRE(pinned.ok());
  CHECK((*pinned)["code"] == v1);
  CHECK((*pinned)["input"] == Json::object());  // the default
  CHECK_FALSE(pinned->contains("memory_mb"));
  CHECK(Resolve(R"({"name": "res", "version": null, "memory_mb": 64.0})").ok());

  auto error = [&](const std::string& payload) {
    absl::StatusOr<Json> r = Resolve(payload);
    REQUIRE_FALSE(r.ok());
    return r.status();
  };
  CHECK(error(R"({"name": "nope"})").code() == absl::StatusCode::kNotFound);
  CHECK(error(R"({"name": "nope"})").message() == "payload.name: no published task 'nope'");
  CHECK(error(R"({"name": "res", "version": 7})").message() == "payload.name: published task 'res' has no version 7");
  CHECK(error(R"({"name": "res", "code": "x"})").message() ==
        "payload.code: give either code (a module's text) or name (a published task), not both");
  CHECK(error(R"({"input": {}})").message() == "payload.code: missing: give code (a module's text) or name (a published task)");
  CHECK(error(R"({"code": ""})").message() == "payload.code: must not be empty");
  CHECK(error(R"({"code": 5})").message() == "payload.code: must be a string (the module's text)");
  CHECK(error(R"({"code": "x", "version": 1})").message() ==
        "payload.version: only with name (it picks a published task's version)");
  CHECK(error(R"({"name": "res", "version": -1})").message().rfind("payload.version: must be a version number", 0) == 0);
  CHECK(error(R"({"name": "bad name"})").message() ==
        "payload.name: 'bad name' may only hold letters, digits, '.', '_' and '-'");
  CHECK(error(R"({"name": "res", "sha256": "x"})").message().rfind("payload.sha256: unknown field", 0) == 0);
  for (const char* mb : {"0", "2049", "\"64\"", "1.5", "null"}) {
    INFO(mb);
    absl::Status s = error(std::string(R"({"code": "x", "memory_mb": )") + mb + "}");
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.message()).rfind("payload.memory_mb: must be an integer 1..2048 (MiB), got ", 0) == 0);
  }
  CHECK(error("[1]").code() == absl::StatusCode::kInvalidArgument);

  // A code payload is checked and kept as written; other task types are not looked at.
  pb::TaskSpec code;
  code.set_task_type("js");
  code.set_payload(R"({"code": "module.exports = () => 1", "memory_mb": 2048})");
  const std::string before = code.payload();
  REQUIRE(registry.Resolve(&code).ok());
  CHECK(code.payload() == before);
  CHECK(Resolve(R"({"name": "nope"})", "echo").ok());
}

TEST_CASE("Resolve refuses a resolved payload past max_payload_bytes, naming the limit") {
  FakeClock clock;
  MemoryJsTaskStore store;
  JsTaskRegistry registry(&store, &clock, 4096);
  std::string code = Module("large");
  code.append(5000, ' ');
  REQUIRE(registry.Publish(code, "", kAlice).ok());
  pb::TaskSpec spec;
  spec.set_task_type("js");
  spec.set_payload(R"({"name": "large"})");
  absl::Status s = registry.Resolve(&spec);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.message()), Catch::StartsWith("payload: ") &&
                                           Catch::Contains("once published task 'large' version 1 is resolved") &&
                                           Catch::EndsWith("over the limit of 4096 (max_payload_bytes)"));
  CHECK(spec.payload() == R"({"name": "large"})");
}

TEST_CASE("The core's check of stored js payloads: code, or a resolved name, a bare name was not resolved") {
  CHECK(CheckStoredJsPayload(R"({"code": "x", "input": 1, "memory_mb": 8})").ok());
  CHECK(CheckStoredJsPayload(R"({"name": "a", "version": 2, "sha256": "ab", "code": "x", "input": {}})").ok());
  CHECK(CheckStoredJsPayload(R"({"name": "a"})").message() ==
        "payload.code: missing: a published task's name is resolved by the client API");
  CHECK(CheckStoredJsPayload(R"({"name": "a", "code": "x"})").message() ==
        "payload.version: a resolved published task needs its version (1, 2, ...)");
  CHECK(CheckStoredJsPayload(R"({"name": "a", "version": 1, "code": "x"})").message() ==
        "payload.sha256: a resolved published task needs its code's sha256");
  CHECK(CheckStoredJsPayload(R"({"code": "x", "sha256": "ab"})").message() ==
        "payload.sha256: only with name (a published task)");
  CHECK(CheckStoredJsPayload(R"({"code": "x", "memory_mb": 0})").code() == absl::StatusCode::kInvalidArgument);
  CHECK(CheckStoredJsPayload(R"({"code": "x", "extra": 0})").message().rfind("payload.extra: unknown field", 0) == 0);
}

// ---- Through the client API ----

const Principal kAlicePrincipal{Role::kSubmit, "alice"};
const Principal kBobPrincipal{Role::kSubmit, "bob"};
const Principal kReaderPrincipal{Role::kRead, "auditor"};
const Principal kRoot{Role::kAdmin, "root"};
const Principal kTaskCaller{Role::kSubmit, "alice", TaskCaller{"task-p", 1, "task-p", 1}};

struct ApiFixture : Fixture {
  ClientApi api{&core, nullptr};

  absl::StatusOr<pb::PublishJsTaskResponse> Publish(const Principal& who, const std::string& code,
                                                    const std::string& name = "") {
    pb::PublishJsTaskRequest req;
    req.set_code(code);
    req.set_name(name);
    return api.PublishJsTask(who, req);
  }
  absl::StatusOr<SubmitResult> Run(const Principal& who, const std::string& payload) {
    pb::TaskSpec spec;
    spec.set_task_type("js");
    spec.set_payload(payload);
    absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
    api.Submit(who, spec, [&](absl::StatusOr<SubmitResult> r) { out = std::move(r); });
    return out;
  }
};

TEST_CASE_METHOD(ApiFixture, "Who may publish, remove, list and show published tasks") {
  CHECK(AllowOp(kAlicePrincipal, ClientOp::kPublishJsTask).ok());
  CHECK(AllowOp(kRoot, ClientOp::kPublishJsTask).ok());
  CHECK(AllowOp(kReaderPrincipal, ClientOp::kPublishJsTask).message() ==
        "token 'auditor' (role read) may not publish or remove published js tasks: the read role is read-only");
  CHECK_THAT(std::string(AllowOp(kTaskCaller, ClientOp::kPublishJsTask).message()),
             Catch::StartsWith("a task token (task-p) may not publish or remove published js tasks"));
  for (const Principal* p : {&kAlicePrincipal, &kReaderPrincipal, &kRoot, &kTaskCaller}) {
    CHECK(AllowOp(*p, ClientOp::kReadJsTasks).ok());
  }
  REQUIRE(Publish(kAlicePrincipal, Module("mine")).ok());
  CHECK(Publish(kReaderPrincipal, Module("theirs")).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(Publish(kTaskCaller, Module("child-made")).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.RemoveJsTask(kTaskCaller, "mine", 0).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.RemoveJsTask(kBobPrincipal, "mine", 0).status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(api.ListJsTasks(kReaderPrincipal)->size() == 1);
  CHECK(api.ListJsTasks(kTaskCaller)->size() == 1);
  CHECK(api.GetJsTask(kTaskCaller, "mine", 0)->code() == Module("mine"));
  CHECK(api.GetJsTask(kReaderPrincipal, "mine", 1)->owner() == "alice");
  absl::StatusOr<pb::PublishJsTaskResponse> again = Publish(kAlicePrincipal, Module("mine"));
  REQUIRE(again.ok());
  CHECK(again->unchanged());
  CHECK(again->task().version() == 1);
  CHECK(api.RemoveJsTask(kRoot, "mine", 0)->removed_versions() == 1);
}

TEST_CASE_METHOD(ApiFixture, "Submit resolves a name, removing the task later keeps the accepted task's code") {
  const std::string code = Module("kept");
  REQUIRE(Publish(kAlicePrincipal, code).ok());
  // Anyone who may submit runs a published task, not only its owner.
  absl::StatusOr<SubmitResult> r = Run(kBobPrincipal, R"({"name": "kept", "input": {"n": 1}})");
  REQUIRE(r.ok());
  REQUIRE(api.RemoveJsTask(kAlicePrincipal, "kept", 0).ok());
  absl::StatusOr<pb::Task> task = api.GetTask(kBobPrincipal, r->task_id);
  REQUIRE(task.ok());
  const Json payload = Json::parse(task->spec().payload());
  CHECK(payload["code"] == code);
  CHECK(payload["version"] == 1);
  CHECK(payload["sha256"] == Sha256Hex(code));
  CHECK(payload["input"]["n"] == 1);
  // Now the name is gone: a new submit is refused, naming it.
  absl::StatusOr<SubmitResult> gone = Run(kBobPrincipal, R"({"name": "kept"})");
  CHECK(gone.status().code() == absl::StatusCode::kNotFound);
  CHECK(gone.status().message() == "payload.name: no published task 'kept'");
  // Inline code runs as written; a bad payload is refused before the core.
  CHECK(Run(kBobPrincipal, R"({"code": "module.exports = () => 1"})").ok());
  CHECK(Run(kBobPrincipal, R"({"code": "x", "name": "kept"})").status().message() ==
        "payload.code: give either code (a module's text) or name (a published task), not both");
}

TEST_CASE_METHOD(ApiFixture, "SubmitBatch resolves each entry, a refused one keeps its place and after_index counts in the request") {
  REQUIRE(Publish(kAlicePrincipal, Module("batched")).ok());
  auto js = [](const std::string& payload) {
    pb::TaskSpec s;
    s.set_task_type("js");
    s.set_payload(payload);
    return s;
  };
  std::vector<absl::StatusOr<pb::TaskSpec>> specs;
  specs.push_back(js(R"({"name": "batched"})"));
  specs.push_back(js(R"({"name": "missing"})"));
  pb::TaskSpec after_first = js(R"({"name": "batched", "version": 1})");
  after_first.add_after()->set_after_index(0);
  specs.push_back(after_first);
  pb::TaskSpec after_refused = js(R"({"code": "module.exports = () => 1"})");
  after_refused.add_after()->set_after_index(1);
  specs.push_back(after_refused);
  pb::TaskSpec after_third = js(R"({"code": "module.exports = () => 2"})");
  after_third.add_after()->set_after_index(2);
  specs.push_back(after_third);
  absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> out = absl::InternalError("not answered");
  api.SubmitBatch(kAlicePrincipal, "tasks", std::move(specs), [&](auto r) { out = std::move(r); });
  REQUIRE(out.ok());
  REQUIRE(out->size() == 5);
  REQUIRE((*out)[0].ok());
  CHECK((*out)[1].status().code() == absl::StatusCode::kNotFound);
  CHECK((*out)[1].status().message() == "tasks[1]: payload.name: no published task 'missing'");
  REQUIRE((*out)[2].ok());
  CHECK((*out)[3].status().message() == "tasks[3].after[0].after_index: entry 1 of this batch was refused");
  REQUIRE((*out)[4].ok());
  // Entry 2 waits for entry 0 and entry 4 for entry 2, by their ids.
  absl::StatusOr<pb::Task> third = api.GetTask(kAlicePrincipal, (*out)[2]->task_id);
  REQUIRE(third.ok());
  REQUIRE(third->spec().after_size() == 1);
  CHECK(third->spec().after(0).task_id() == (*out)[0]->task_id);
  absl::StatusOr<pb::Task> fifth = api.GetTask(kAlicePrincipal, (*out)[4]->task_id);
  REQUIRE(fifth.ok());
  CHECK(fifth->spec().after(0).task_id() == (*out)[2]->task_id);
  CHECK(Json::parse(third->spec().payload())["code"] == Module("batched"));
}

}  // namespace
}  // namespace rc::coordinator
