#include <catch2/catch.hpp>
#include <filesystem>

#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/plugins.h"

namespace rc::worker {
namespace {

ExecutionOptions Options() {
  ExecutionOptions o;
  o.work_root = (std::filesystem::temp_directory_path() / NewId("rc-plugin-test")).string();
  return o;
}

absl::StatusOr<HandlerOutput> RunWith(Handler& h, const std::string& payload) {
  StopToken stop(absl::Now() + absl::Seconds(20));
  return h.Run(TaskContext{"task-p", 1, payload, &stop, {}, nullptr});
}

}  // namespace

TEST_CASE("Both plugin kinds are found in the plugin dir and run") {
  auto scan = ScanPlugins(RC_PLUGIN_DIR, Options());
  REQUIRE(scan.ok());
  CHECK(scan->refused.empty());
  REQUIRE(scan->handlers.count("word_count") == 1);
  REQUIRE(scan->handlers.count("reverse_text") == 1);

  auto words = RunWith(*scan->handlers["word_count"], R"({"text":"one two\nthree"})");
  REQUIRE(words.ok());
  CHECK(words->failure.ok());
  CHECK(nlohmann::json::parse(words->result) == nlohmann::json{{"words", 3}, {"lines", 2}, {"characters", 13}});

  auto bad = RunWith(*scan->handlers["word_count"], R"({"txt":1})");
  REQUIRE(bad.ok());
  CHECK_THAT(std::string(bad->failure.message()), Catch::EndsWith("exit code 1: payload.text: required, a string"));

  auto reversed = RunWith(*scan->handlers["reverse_text"], R"({"text":"abc"})");
  REQUIRE(reversed.ok());
  CHECK(reversed->result == R"({"reversed":"cba"})");
  auto missing = RunWith(*scan->handlers["reverse_text"], "{}");
  CHECK(missing.status().message() ==
        std::string("payload.text: required, a string (") + RC_PLUGIN_DIR + "/libreverse_text.so returned 1)");
}

TEST_CASE("A plugin built for another ABI version is refused, naming the file and versions") {
  auto scan = ScanPlugins(RC_BAD_PLUGIN_DIR, Options());
  REQUIRE(scan.ok());
  CHECK(scan->handlers.empty());
  REQUIRE(scan->refused.size() == 1);
  CHECK_THAT(scan->refused[0], Catch::Contains("libbad_abi.so: plugin ABI version 99, this worker speaks 1"));
  CHECK(ScanPlugins("/nonexistent-plugins", Options()).status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace rc::worker
