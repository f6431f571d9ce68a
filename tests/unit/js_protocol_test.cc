// The `js` handler's pure parts: the payload, the engine host's messages (run, done) and
// what becomes of them (result, failure naming the error, stack and limits), and the
// children of context.tasks.execute (the child's spec, its outcome as a call_result).
#include <catch2/catch.hpp>

#include "nlohmann/json.hpp"
#include "worker/handlers/js_calls.h"
#include "worker/handlers/js_protocol.h"

namespace rc::worker {
namespace {

using json = nlohmann::json;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

TEST_CASE("js payload: code, input, memory_mb and the file name errors show") {
  auto p = ParseJsPayload(R"({"code":"module.exports = () => 1"})");
  REQUIRE(p.ok());
  CHECK(p->code == "module.exports = () => 1");
  CHECK(p->input == json::object());
  CHECK(p->memory_mb == 64);
  CHECK(p->filename == "task.js");

  p = ParseJsPayload(R"({"code":"x","input":[1,"a",null],"memory_mb":128})");
  REQUIRE(p.ok());
  CHECK(p->input == json::parse(R"([1,"a",null])"));
  CHECK(p->memory_mb == 128);

  // Resolved by the coordinator: the published name and version name the file.
  p = ParseJsPayload(R"({"name":"add","version":3,"sha256":"ab","code":"x","input":{"a":1}})");
  REQUIRE(p.ok());
  CHECK(p->filename == "add@v3.js");
  CHECK(p->input == json{{"a", 1}});

  struct Bad {
    const char* payload;
    const char* message;
  };
  for (const Bad& b : {
           Bad{"[1]", "payload: expected a JSON object"},
           Bad{"{nope", "payload: expected a JSON object"},
           Bad{"{}", "payload.code: required, the module's source (module.exports = async function execute(input, "
                     "context) {...}), or payload.name of a published task"},
           Bad{R"({"name":"add"})", "payload.code: missing; the coordinator resolves payload.name to the published "
                                    "code, and this one did not"},
           Bad{R"({"code":7})", "payload.code: expected a string"},
           Bad{R"({"code":""})", "payload.code: empty"},
           Bad{R"({"code":"x","memory_mb":0})", "payload.memory_mb: must be 1..2048, got 0"},
           Bad{R"({"code":"x","memory_mb":4096})", "payload.memory_mb: must be 1..2048, got 4096"},
           Bad{R"({"code":"x","memory_mb":1.5})", "payload.memory_mb: expected an integer, got 1.5"},
           Bad{R"({"code":"x","memory_mb":"64"})", "payload.memory_mb: expected an integer, got \"64\""},
           Bad{R"({"code":"x","name":5})", "payload.name: expected a non-empty string"},
           Bad{R"({"code":"x","name":"a","version":"v1"})", "payload.version: expected an integer, got \"v1\""},
       }) {
    INFO(b.payload);
    auto r = ParseJsPayload(b.payload);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Message(r.status()) == b.message);
  }
}

TEST_CASE("js protocol: the run message carries the attempt's time plus 250 ms") {
  CHECK(HostTimeoutMs(absl::Seconds(2)) == 2250);
  CHECK(HostTimeoutMs(absl::Milliseconds(-5000)) == 1);
  CHECK(HostTimeoutMs(absl::InfiniteDuration()) == 2147483647);
  CHECK(HostTimeoutMs(absl::Hours(24 * 30)) == 2147483647);
  JsPayload p;
  p.code = "module.exports = (i) => i";
  p.input = {{"x", 1}};
  p.memory_mb = 32;
  p.filename = "echo@v2.js";
  CHECK(RunMessage("t-1/2", p, 1250) == json{{"op", "run"},
                                              {"id", "t-1/2"},
                                              {"code", "module.exports = (i) => i"},
                                              {"filename", "echo@v2.js"},
                                              {"input", {{"x", 1}}},
                                              {"memory_mb", 32},
                                              {"timeout_ms", 1250}});
}

TEST_CASE("js protocol: done makes the result or a failure with the JS error, its stack and position") {
  JsPayload p;
  p.code = "x";
  JsOutcome ok = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":true,"result":{"sum":3,"s":"é"}})"), p);
  CHECK(ok.failure.ok());
  CHECK(json::parse(ok.result) == json{{"sum", 3}, {"s", "é"}});
  CHECK(FromDone(json::parse(R"({"op":"done","id":"a/1","ok":true,"result":[1,2]})"), p).result == "[1,2]");
  CHECK(FromDone(json::parse(R"({"op":"done","id":"a/1","ok":true})"), p).result == "null");

  JsOutcome thrown = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":null,
      "error":{"name":"Error","message":"boom 7","stack":"    at helper (task.js:2:18)\n    at execute (task.js:6:16)\n"}})"),
                              p);
  CHECK(thrown.failure.code() == absl::StatusCode::kAborted);
  CHECK(Message(thrown.failure) == "Error: boom 7\n    at helper (task.js:2:18)\n    at execute (task.js:6:16)");
  CHECK(thrown.stderr == Message(thrown.failure) + "\n");

  // A syntax error whose position is only in line/column (or also in the stack).
  JsOutcome syntax = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,
      "error":{"name":"SyntaxError","message":"unexpected token in expression: ';'","line":2,"column":13}})"),
                              p);
  CHECK(Message(syntax.failure) == "SyntaxError: unexpected token in expression: ';'\n    at task.js:2:13");
  p.filename = "add@v3.js";
  syntax = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,
      "error":{"name":"SyntaxError","message":"expecting ')'","stack":"    at add@v3.js:4:1\n","line":4,"column":1}})"),
                    p);
  CHECK(Message(syntax.failure) == "SyntaxError: expecting ')'\n    at add@v3.js:4:1");
  CHECK_FALSE(syntax.load_failure);  // no phase: a failure of the running task (retried as usual)

  // A module that failed while loading is the payload's fault; a limit hit then is not.
  JsOutcome load = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":null,"phase":"load",
      "error":{"name":"SyntaxError","message":"expecting ')'","line":4,"column":1}})"),
                            p);
  CHECK(load.load_failure);
  CHECK(Message(load.failure) == "SyntaxError: expecting ')'\n    at add@v3.js:4:1");
  CHECK_FALSE(FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"memory","phase":"load",
      "error":{"name":"InternalError","message":"out of memory"}})"),
                       p)
                  .load_failure);

  // A stack that starts with its own header is not doubled.
  CHECK(FormatJsError(json{{"name", "TypeError"}, {"message", "x is null"}, {"stack", "TypeError: x is null\n    at f"}},
                      "task.js") == "TypeError: x is null\n    at f");
  // Thrown non-errors.
  CHECK(FormatJsError(json("str"), "task.js") == "thrown: \"str\"");
  CHECK(FormatJsError(json(nullptr), "task.js") == "thrown: null");
  CHECK(FormatJsError(json::object(), "task.js") == "Error");

  p.memory_mb = 64;
  JsOutcome memory = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"memory",
      "error":{"name":"InternalError","message":"out of memory"}})"),
                              p);
  CHECK(Message(memory.failure) == "memory_mb (64 MiB) exceeded: InternalError: out of memory");
  JsOutcome null_oom = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"memory","error":null})"), p);
  CHECK(Message(null_oom.failure) == "memory_mb (64 MiB) exceeded: thrown: null");

  JsOutcome stack = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"stack",
      "error":{"name":"RangeError","message":"too deep"}})"),
                             p);
  CHECK(Message(stack.failure) == "stack overflow: RangeError: too deep");
  stack = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"stack",
      "error":{"name":"InternalError","message":"stack overflow"}})"),
                   p);
  CHECK(Message(stack.failure) == "InternalError: stack overflow");

  JsOutcome timeout = FromDone(json::parse(R"({"op":"done","id":"a/1","ok":false,"limit":"timeout",
      "error":{"name":"InternalError","message":"interrupted"}})"),
                               p);
  CHECK(timeout.failure.code() == absl::StatusCode::kDeadlineExceeded);  // the task ends TIMEOUT
  CHECK(Message(timeout.failure) == "timed out in the js engine: InternalError: interrupted");
}

TEST_CASE("js calls: the child's spec from a name or {task_type, payload}, with options") {
  auto spec = ChildSpec(json::parse(R"({"call":1,"target":"add","input":{"a":1}})"));
  REQUIRE(spec.ok());
  CHECK(spec->task_type() == "js");
  CHECK(json::parse(spec->payload()) == json{{"name", "add"}, {"input", {{"a", 1}}}});

  spec = ChildSpec(json::parse(R"({"call":2,"target":"add","input":{"a":1},
      "options":{"memory_mb":16,"timeout_seconds":2.5,"max_retries":0,"priority":"high"}})"));
  REQUIRE(spec.ok());
  CHECK(json::parse(spec->payload()) == json{{"name", "add"}, {"input", {{"a", 1}}}, {"memory_mb", 16}});
  CHECK(spec->requirements().timeout_seconds() == 2.5);
  CHECK(spec->requirements().has_max_retries());
  CHECK(spec->requirements().max_retries() == 0);
  CHECK(spec->priority() == pb::PRIORITY_HIGH);

  spec = ChildSpec(json::parse(R"({"call":3,"target":{"task_type":"echo","payload":{"x":1}}})"));
  REQUIRE(spec.ok());
  CHECK(spec->task_type() == "echo");
  CHECK(json::parse(spec->payload()) == json{{"x", 1}});
  CHECK_FALSE(spec->requirements().has_timeout_seconds());
  // A js child's input joins its payload unless it has its own.
  spec = ChildSpec(json::parse(R"({"call":4,"target":{"task_type":"js","payload":{"code":"c"}},"input":[1]})"));
  REQUIRE(spec.ok());
  CHECK(json::parse(spec->payload()) == json{{"code", "c"}, {"input", {1}}});
  spec = ChildSpec(json::parse(R"({"call":5,"target":{"task_type":"js","payload":{"code":"c","input":1}},"input":2})"));
  REQUIRE(spec.ok());
  CHECK(json::parse(spec->payload()) == json{{"code", "c"}, {"input", 1}});
  // Other types take their payload as given; the host sends {} for an input left out.
  spec = ChildSpec(json::parse(R"({"call":6,"target":{"task_type":"echo"},"input":{},"options":{}})"));
  REQUIRE(spec.ok());
  CHECK(json::parse(spec->payload()) == json::object());

  struct Bad {
    const char* call;
    const char* message;
  };
  for (const Bad& b : {
           Bad{R"({"call":1})", "target: expected a published task's name or {task_type, payload}, got null"},
           Bad{R"({"call":1,"target":""})", "target: empty (a published task's name)"},
           Bad{R"({"call":1,"target":{"payload":{}}})", "target.task_type: required, a string"},
           Bad{R"({"call":1,"target":{"task_type":"echo","payload":[1]}})", "target.payload: expected an object"},
           Bad{R"({"call":1,"target":"a","options":[1]})", "options: expected an object"},
           Bad{R"({"call":1,"target":{"task_type":"echo"},"input":{"y":2}})",
               "input: only js children take an input; put it in target.payload for echo"},
           Bad{R"({"call":1,"target":"a","options":{"colour":"red"}})",
               "options.colour: unknown option (timeout_seconds, max_retries, priority, memory_mb)"},
           Bad{R"({"call":1,"target":"a","options":{"priority":"asap"}})", nullptr},
           Bad{R"({"call":1,"target":"a","options":{"timeout_seconds":0}})",
               "options.timeout_seconds: expected a number of seconds > 0, got 0"},
           Bad{R"({"call":1,"target":"a","options":{"max_retries":-1}})", "options.max_retries: expected 0..100, got -1"},
           Bad{R"({"call":1,"target":"a","options":{"memory_mb":4096}})", "options.memory_mb: expected 1..2048, got 4096"},
           Bad{R"({"call":1,"target":{"task_type":"echo"},"options":{"memory_mb":8}})",
               "options.memory_mb: only for js children, not echo"},
       }) {
    INFO(b.call);
    auto r = ChildSpec(json::parse(b.call));
    REQUIRE(!r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    if (b.message != nullptr) {
      CHECK(Message(r.status()) == b.message);
    } else {
      CHECK_THAT(Message(r.status()), Catch::StartsWith("options.priority: "));
    }
  }
}

TEST_CASE("js calls: a child's end becomes the call_result the JS promise settles with") {
  pb::Task t;
  t.set_task_id("task-9");
  t.mutable_spec()->set_task_type("echo");
  t.set_status(pb::TASK_STATUS_SUCCESS);
  t.set_result(R"({"x":1})");
  CHECK(ChildOutcome("p/1", 3, t) ==
        json{{"op", "call_result"}, {"id", "p/1"}, {"call", 3}, {"ok", true}, {"result", {{"x", 1}}}});
  t.set_result("");
  CHECK(ChildOutcome("p/1", 3, t)["result"].is_null());
  t.set_result("{not json");
  CHECK(ChildOutcome("p/1", 3, t) == json{{"op", "call_result"},
                                          {"id", "p/1"},
                                          {"call", 3},
                                          {"ok", false},
                                          {"error", "child task task-9 (echo) returned a result that is not JSON"}});
  t.set_status(pb::TASK_STATUS_FAILED);
  t.set_error_message("Error: no");
  CHECK(ChildOutcome("p/1", 4, t) == json{{"op", "call_result"},
                                          {"id", "p/1"},
                                          {"call", 4},
                                          {"ok", false},
                                          {"error", "child task task-9 (echo) ended failed: Error: no"},
                                          {"task_id", "task-9"},
                                          {"status", "failed"}});
  t.set_status(pb::TASK_STATUS_TIMEOUT);
  t.set_error_message("");
  CHECK(ChildOutcome("p/1", 4, t)["error"] == "child task task-9 (echo) ended timeout");
  CHECK(CallRefused("p/1", 5, "no") == json{{"op", "call_result"}, {"id", "p/1"}, {"call", 5}, {"ok", false}, {"error", "no"}});
}

TEST_CASE("js calls: without a task socket every call is refused, saying so, and nothing stays open") {
  int wakes = 0;
  int connects = 0;
  JsCalls calls("t/1", [&]() -> absl::StatusOr<std::string> { ++connects; return std::string(); }, [&] { ++wakes; });
  calls.Start(json::parse(R"({"op":"call","id":"t/1","call":1,"target":"add","input":{}})"));
  calls.Start(json::parse(R"({"op":"call","id":"t/1","call":2,"target":{"task_type":"echo"}})"));
  calls.Start(json::parse(R"({"op":"call","id":"t/1","call":3,"target":7})"));
  calls.Start(json::parse(R"({"op":"call","id":"t/1","target":"no call number"})"));  // nothing to answer
  std::vector<json> answers = calls.Drain();
  REQUIRE(answers.size() == 3);
  CHECK(answers[0] == CallRefused("t/1", 1, "this worker cannot submit child tasks (no task socket)"));
  CHECK(answers[1] == CallRefused("t/1", 2, "this worker cannot submit child tasks (no task socket)"));
  CHECK(answers[2]["error"] == "target: expected a published task's name or {task_type, payload}, got 7");
  CHECK(connects == 1);  // tried once
  CHECK(calls.outstanding() == 0);
  CHECK_FALSE(calls.connected());
  CHECK(calls.Drain().empty());

  JsCalls broken("t/2", []() -> absl::StatusOr<std::string> { return absl::UnavailableError("cannot listen"); },
                 [] {});
  broken.Start(json::parse(R"({"op":"call","id":"t/2","call":1,"target":"add"})"));
  answers = broken.Drain();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0]["error"] == "this worker cannot submit child tasks: cannot listen");
}

}  // namespace rc::worker
