#include <catch2/catch.hpp>

#include "common/json_view.h"

namespace rc {

TEST_CASE("TaskToJson has the task model's fields, times in RFC 3339 with milliseconds") {
  ::retire_cluster::v1::Task t;
  t.set_task_id("task-1");
  t.mutable_spec()->set_task_type("echo");
  t.mutable_spec()->set_payload(R"({"message":"hi"})");
  t.set_status(::retire_cluster::v1::TASK_STATUS_SUCCESS);
  t.set_result(R"({"message":"hi"})");
  t.set_created_at_ms(1700000000123);
  Json j = TaskToJson(t);
  CHECK(j.begin().key() == "task_id");
  CHECK(j["status"] == "success");
  CHECK(j["priority"] == "normal");
  CHECK(j["payload"]["message"] == "hi");
  CHECK(j["result"]["message"] == "hi");
  CHECK(j["created_at"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["started_at"].is_null());
  CHECK(j["requirements"]["timeout_seconds"] == 300.0);
  CHECK(j["requirements"]["max_retries"] == 3);
}

TEST_CASE("ValidateJsonObject accepts objects only") {
  CHECK(ValidateJsonObject("", "payload").ok());
  CHECK(ValidateJsonObject(" {\"a\": [1, 2]} ", "payload").ok());
  CHECK(ValidateJsonObject("42", "payload").message() == "payload must be a JSON object");
  CHECK_FALSE(ValidateJsonObject("{\"a\": }", "payload").ok());
}

}  // namespace rc
