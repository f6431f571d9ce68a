// Integers from text (JSON task specs, command-line flags) are range-checked before they
// are narrowed to 32 bits: out of range is refused naming the field, never truncated
// (4294967301 once became max_retries 5; 2147483648 became a negative min_cpu_cores).
#include <catch2/catch.hpp>

#include "common/config.h"
#include "common/flags.h"
#include "common/task_spec_json.h"

namespace rc {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

absl::StatusOr<::retire_cluster::v1::TaskSpec> FromJson(const std::string& text) {
  return TaskSpecFromJson(nlohmann::json::parse(text));
}

}  // namespace

TEST_CASE("FlagIntInRange refuses values outside the range, naming the flag, instead of truncating") {
  CHECK(*FlagIntInRange("max-retries", "5", 0, 100) == 5);
  CHECK(*FlagIntInRange("max-retries", "0", 0, 100) == 0);
  CHECK(*FlagIntInRange("max-retries", "100", 0, 100) == 100);
  CHECK(Message(FlagIntInRange("max-retries", "4294967301", 0, 100).status()) ==
        "--max-retries: must be 0..100, got 4294967301");
  CHECK(Message(FlagIntInRange("max-retries", "-1", 0, 100).status()) == "--max-retries: must be 0..100, got -1");
  CHECK(Message(FlagIntInRange("min-cpu-cores", "2147483648", 0, 2147483647).status()) ==
        "--min-cpu-cores: must be 0..2147483647, got 2147483648");
  // Beyond int64 is still out of range, not "not an integer".
  CHECK(Message(FlagIntInRange("limit", "99999999999999999999999", 1, 10000).status()) ==
        "--limit: must be 1..10000, got 99999999999999999999999");
  CHECK(Message(FlagIntInRange("limit", "ten", 1, 10000).status()) == "--limit: expected an integer, got 'ten'");
}

TEST_CASE("JSON task specs refuse integers outside a field's range, naming the field") {
  auto ok = FromJson(R"({"task_type":"echo","requirements":{"max_retries":5,"min_cpu_cores":2147483647}})");
  REQUIRE(ok.ok());
  CHECK(ok->requirements().max_retries() == 5);
  CHECK(ok->requirements().min_cpu_cores() == 2147483647);

  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"max_retries":4294967301}})").status()) ==
        "requirements.max_retries: must be 0..100, got 4294967301");
  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"max_retries":-1}})").status()) ==
        "requirements.max_retries: must be 0..100, got -1");
  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"min_cpu_cores":2147483648}})").status()) ==
        "requirements.min_cpu_cores: must be 0..2147483647, got 2147483648");
  // Above int64 (nlohmann keeps it as uint64; get<int64_t> would wrap it to -1).
  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"min_cpu_cores":18446744073709551615}})").status()) ==
        "requirements.min_cpu_cores: must be 0..2147483647, got 18446744073709551615");
  // Above uint64 (parsed as a double).
  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"max_retries":1e30}})").status()) ==
        "requirements.max_retries: must be 0..100, got 1e+30");
  CHECK(Message(FromJson(R"({"task_type":"echo","requirements":{"max_retries":1.5}})").status()) ==
        "requirements.max_retries: expected an integer");
  auto status = FromJson(R"({"task_type":"echo","requirements":{"max_retries":4294967301}})").status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Integer flags of the binaries are range-checked before narrowing to int") {
  std::vector<FlagSpec> specs = CoordinatorFlagSpecs();
  // 4294975488 = 2^32 + 8192: a plain cast to int made it port 8192.
  auto f = ParseFlags({"prog", "--port", "4294975488"}, 1, specs);
  REQUIRE(f.ok());
  auto c = LoadCoordinatorConfig(*f);
  REQUIRE(!c.ok());
  CHECK(Message(c.status()) == "--port: must be -2147483648..2147483647, got 4294975488");

  std::vector<FlagSpec> wspecs = WorkerFlagSpecs();
  auto wf = ParseFlags({"prog", "--slots", "4294967297"}, 1, wspecs);
  REQUIRE(wf.ok());
  CHECK(Message(LoadWorkerConfig(*wf).status()) == "--slots: must be -2147483648..2147483647, got 4294967297");
}

}  // namespace rc
