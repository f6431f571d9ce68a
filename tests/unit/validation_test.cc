#include <catch2/catch.hpp>

#include "coordinator/core/task_validation.h"

namespace rc::coordinator {
namespace {

namespace pb = ::retire_cluster::v1;

std::string Check(const std::function<void(pb::TaskSpec*)>& edit) {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  edit(&spec);
  return std::string(ValidateAndNormalize(&spec).message());
}

}  // namespace

TEST_CASE("A valid spec gets explicit defaults") {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  REQUIRE(ValidateAndNormalize(&spec).ok());
  CHECK(spec.priority() == pb::PRIORITY_NORMAL);
  CHECK(spec.payload() == "{}");
}

TEST_CASE("A browser block asks for a worker that runs browsers, other payloads do not") {
  auto normalized = [](const std::string& type, const std::string& payload) {
    pb::TaskSpec spec;
    spec.set_task_type(type);
    spec.set_payload(payload);
    REQUIRE(ValidateAndNormalize(&spec).ok());
    return spec.requirements().browser_required();
  };
  CHECK(normalized("python_script", R"({"script": "x", "browser": {"profile": "default"}})"));
  CHECK(normalized("node_task", R"({"script": "a.js", "browser": {}})"));
  CHECK(normalized("command", R"({"command": "true", "browser": {"keep_alive": false}})"));
  CHECK_FALSE(normalized("command", R"({"command": "echo \"browser\""})"));  // only a top-level key counts
  CHECK_FALSE(normalized("command", R"({"command": "true", "browser": null})"));
  CHECK_FALSE(normalized("echo", R"({"browser": {}})"));  // only the three types that take the block
  CHECK_FALSE(normalized("python_script", R"({"script": "x", "env": {"browser": "1"}})"));
}

TEST_CASE("Invalid specs are refused naming the field") {
  CHECK(Check([](auto* s) { s->set_task_type(""); }) == "task_type: must not be empty");
  CHECK(Check([](auto* s) { s->set_task_type("rm -rf"); }) ==
        "task_type: 'rm -rf' may only hold letters, digits, '_', '-' and '.'");
  CHECK(Check([](auto* s) { s->set_payload("[1,2]"); }) == "payload must be a JSON object");
  CHECK(Check([](auto* s) { s->set_payload("{\"a\":"); }).rfind("payload is not valid JSON", 0) == 0);
  CHECK(Check([](auto* s) { s->set_priority(static_cast<pb::Priority>(9)); }) == "priority: unknown value 9");
  CHECK(Check([](auto* s) { s->mutable_requirements()->set_timeout_seconds(-1); }) ==
        "requirements.timeout_seconds: must be greater than 0, got -1");
  CHECK(Check([](auto* s) { s->mutable_requirements()->set_timeout_seconds(0); }) ==
        "requirements.timeout_seconds: must be greater than 0, got 0");
  CHECK(Check([](auto* s) { s->mutable_requirements()->set_max_retries(-2); }) ==
        "requirements.max_retries: must be 0..100, got -2");
  CHECK(Check([](auto* s) { s->mutable_requirements()->set_min_cpu_cores(-1); }) ==
        "requirements.min_cpu_cores: must be 0..2147483647, got -1");  // as the JSON reader says it
  CHECK(Check([](auto* s) { s->mutable_requirements()->set_required_platform("Linux"); }) ==
        "requirements.required_platform: unknown platform 'Linux' (linux, windows, darwin or android)");
  CHECK(Check([](auto* s) { s->mutable_requirements()->add_required_tags(""); }) ==
        "requirements.required_tags: a tag must not be empty");
}

TEST_CASE("Specs over a size limit are refused naming the limit") {
  TaskLimits limits;
  limits.max_payload_bytes = 20;
  limits.max_metadata_bytes = 10;
  limits.max_required_tags = 2;
  auto check = [&](const std::function<void(pb::TaskSpec*)>& edit) {
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    edit(&spec);
    absl::Status s = ValidateAndNormalize(&spec, limits);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  CHECK(check([](auto* s) { s->set_payload(R"({"text":"twenty-one chars"})"); }) ==
        "payload: 27 bytes, over the limit of 20 (max_payload_bytes)");
  CHECK(check([](auto* s) { (*s->mutable_metadata())["owner"] = "somebody"; }) ==
        "metadata: 13 bytes of keys and values, over the limit of 10 (max_metadata_bytes)");
  CHECK(check([](auto* s) {
          for (const char* t : {"a", "b", "c"}) s->mutable_requirements()->add_required_tags(t);
        }) == "requirements.required_tags: 3 tags, over the limit of 2");
  pb::TaskSpec fits;
  fits.set_task_type("echo");
  fits.set_payload(R"({"x":"fits"})");
  (*fits.mutable_metadata())["k"] = "v";
  CHECK(ValidateAndNormalize(&fits, limits).ok());
  CHECK(TaskLimits().max_payload_bytes == 1 << 20);  // the documented default
}

}  // namespace rc::coordinator
