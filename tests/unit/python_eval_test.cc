#include <catch2/catch.hpp>
#include <filesystem>

#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/opt_in_handlers.h"

namespace rc::worker {
namespace {

absl::StatusOr<HandlerOutput> Eval(const std::string& expression, absl::Duration limit = absl::Seconds(30)) {
  ExecutionOptions o;
  o.work_root = (std::filesystem::temp_directory_path() / NewId("rc-eval-test")).string();
  auto h = MakePythonEvalHandler(o);
  StopToken stop(absl::Now() + limit);
  auto out = h->Run(TaskContext{"task-e", 1, nlohmann::json{{"expression", expression}}.dump(), &stop, {}, nullptr});
  std::filesystem::remove_all(o.work_root);
  return out;
}

// The failure message of an expression that must not run.
std::string Refusal(const std::string& expression) {
  auto out = Eval(expression);
  REQUIRE(out.ok());
  REQUIRE_FALSE(out->failure.ok());
  return std::string(out->failure.message());
}

}  // namespace

TEST_CASE("python_eval computes allowed expressions") {
  auto sum = Eval("sum(range(1000000))");
  REQUIRE(sum.ok());
  CHECK(sum->failure.ok());
  CHECK(sum->result == R"({"value":499999500000})");
  CHECK(Eval("[x * x for x in range(5) if x % 2 == 0]")->result == R"({"value":[0,4,16]})");
  CHECK(Eval("{'a': max(3, 7), 'b': sorted({3, 1, 2})}")->result == R"({"value":{"a":7,"b":[1,2,3]}})");
  CHECK(Eval("1 < 2 and not False")->result == R"({"value":true})");
  CHECK(Eval("pow(2, 100)")->result == R"({"value":"1267650600228229401496703205376"})");
  CHECK(Eval("[float('nan'), 1e308 * 10]")->result == R"({"value":["nan","inf"]})");
}

TEST_CASE("python_eval refuses imports, attribute walks, file access and unknown names") {
  CHECK(Refusal("__import__('os').system('touch /tmp/rc-pwned')") == "refused: Attribute is not allowed");
  CHECK(Refusal("__import__('os')") == "refused: name '__import__' is not allowed");
  CHECK(Refusal("().__class__.__bases__[0].__subclasses__()") == "refused: Attribute is not allowed");
  CHECK(Refusal("open('/etc/passwd').read()") == "refused: Attribute is not allowed");
  CHECK(Refusal("open('/etc/passwd')") == "refused: name 'open' is not allowed");
  CHECK(Refusal("[c for c in ().__class__.__mro__]") == "refused: Attribute is not allowed");
  CHECK(Refusal("(lambda: 1)()") == "refused: Lambda is not allowed");
  CHECK(Refusal("import os") == "syntax error: invalid syntax");
  CHECK(Refusal("eval('1')") == "refused: name 'eval' is not allowed");
  CHECK_FALSE(std::filesystem::exists("/tmp/rc-pwned"));
}

TEST_CASE("python_eval bounds work: huge ranges, powers and allocations fail, runaway loops time out") {
  CHECK(Refusal("sum(range(10**12))") == "refused: use pow(a, b) instead of a ** b");
  CHECK(Refusal("sum(range(pow(10, 12)))") == "ValueError: range longer than 10000000");
  CHECK(Refusal("pow(10, pow(10, 10))") == "ValueError: exponent larger than 100000");
  std::string alloc = Refusal("[0] * pow(10, 10)");
  CHECK((alloc == "out of memory" || alloc.find("MemoryError") != std::string::npos));
  absl::Time start = absl::Now();
  auto slow = Eval("max(x for x in range(9999999) for y in range(9999999))", absl::Seconds(1));
  REQUIRE(slow.ok());
  CHECK(absl::Now() - start < absl::Seconds(5));
}

}  // namespace rc::worker
