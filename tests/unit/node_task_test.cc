#include <catch2/catch.hpp>
#include <filesystem>

#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/process_runner.h"

namespace rc::worker {
namespace {

const std::string kRoot = std::string(RC_SOURCE_DIR) + "/tests/fixtures/node-tasks";

absl::StatusOr<HandlerOutput> RunNode(const nlohmann::json& payload, const std::string& root = kRoot) {
  ExecutionOptions o;
  o.work_root = (std::filesystem::temp_directory_path() / NewId("rc-node-test")).string();
  auto h = MakeNodeTaskHandler(root, o);
  StopToken stop(absl::Now() + absl::Seconds(30));
  auto out = h->Run(TaskContext{"task-n", 1, payload.dump(), &stop, {}, nullptr});
  std::filesystem::remove_all(o.work_root);
  return out;
}

}  // namespace

TEST_CASE("node_task runs a folder with args and reports its exit code") {
  if (FindProgram("node", "/usr/local/bin:/usr/bin:/bin").empty()) {
    WARN("SKIP: node is not installed");
    return;
  }
  auto out = RunNode({{"task_path", "hello"}, {"args", {"a", "b c"}}});
  REQUIRE(out.ok());
  CHECK(out->failure.ok());
  CHECK(out->stdout == "{\"args\":[\"a\",\"b c\"]}\n");
  auto failing = RunNode({{"task_path", "hello"}, {"args", {"--exit", "4"}}});
  REQUIRE(failing.ok());
  CHECK(failing->exit_code == 4);
  CHECK(failing->failure.message() == "exit code 4");
}

TEST_CASE("node_task refuses paths that escape its root and names what is missing") {
  CHECK(RunNode({{"task_path", "../../worker"}}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(RunNode({{"task_path", "hello/../../.."}}).status().message()),
             Catch::Contains("is outside the node task root"));
  CHECK(RunNode({{"task_path", "hello/../../.."}}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(RunNode({{"task_path", "."}}).status().code() == absl::StatusCode::kInvalidArgument);
  // An absolute path is outside this worker's root, maybe not another's: not permanent.
  auto absolute = RunNode({{"task_path", "/etc"}});
  CHECK(absolute.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(absolute.status().message()), Catch::Contains("is outside the node task root"));
  CHECK_THAT(std::string(RunNode({{"task_path", "absent"}}).status().message()), Catch::Contains("no directory"));
  CHECK_THAT(std::string(RunNode({{"task_path", "no-index"}}).status().message()), Catch::EndsWith("has no index.js"));
  CHECK(RunNode(nlohmann::json::object()).status().message() == "payload.task_path: required, a directory under the worker's node task root");
  CHECK(RunNode({{"task_path", "hello"}}, "").status().message() ==
        "this worker has no node task root (--node-task-root DIR)");
}

}  // namespace rc::worker
