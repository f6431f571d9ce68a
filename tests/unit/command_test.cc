// The process runner through the `command` handler: exact output, exit codes, a
// scrubbed environment, containment of the working directory, and nothing left
// running after a timeout.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "worker/handlers/opt_in_handlers.h"

namespace rc::worker {
namespace {


absl::StatusOr<HandlerOutput> RunCommand(const nlohmann::json& payload, absl::Duration limit = absl::Seconds(20),
                                         size_t cap = 1 << 20) {
  ExecutionOptions options;
  options.work_root = (std::filesystem::temp_directory_path() / NewId("rc-cmd-test")).string();
  options.output_cap = cap;
  auto handler = MakeCommandHandler(options);
  StopToken stop(absl::Now() + limit);
  TaskContext ctx{"task-1", 1, payload.dump(), &stop, {}, nullptr};
  auto out = handler->Run(ctx);
  std::filesystem::remove_all(options.work_root);
  return out;
}

bool Gone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  size_t close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'Z';  // zombie: dead
}

}  // namespace

TEST_CASE("command returns exact stdout, stderr and exit code, non-zero is a failure naming it") {
  auto out = RunCommand({{"command", "printf 'a\\nb'; printf err >&2; exit 3"}});
  REQUIRE(out.ok());
  CHECK(out->stdout == "a\nb");
  CHECK(out->stderr == "err");
  CHECK(out->exit_code == 3);
  CHECK(out->failure.message() == "exit code 3");
  CHECK(nlohmann::json::parse(out->result)["exit_code"] == 3);

  auto ok = RunCommand({{"argv", {"cat"}}, {"stdin", "hello from stdin"}});
  REQUIRE(ok.ok());
  CHECK(ok->stdout == "hello from stdin");
  CHECK(ok->failure.ok());
}

TEST_CASE("command sees only a scrubbed environment plus its own variables") {
  setenv("RC_TEST_SECRET", "do-not-leak", 1);
  auto out = RunCommand({{"argv", {"env"}}, {"env", {{"FOO", "bar"}}}});
  REQUIRE(out.ok());
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(out->stdout, '\n', absl::SkipEmpty())) {
    names.emplace_back(line.substr(0, line.find('=')));
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"FOO", "HOME", "LANG", "PATH", "TMPDIR"});
  unsetenv("RC_TEST_SECRET");
}

TEST_CASE("command runs in a private directory that is removed afterwards, cwd cannot escape it") {
  auto out = RunCommand({{"command", "pwd; touch made-here"}});
  REQUIRE(out.ok());
  std::string dir = out->stdout.substr(0, out->stdout.find('\n'));
  CHECK(dir.find("task-1-1-") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir));

  auto sub = RunCommand({{"command", "pwd"}, {"cwd", "a/b"}});
  REQUIRE(sub.ok());
  CHECK(sub->stdout.find("/a/b\n") != std::string::npos);

  CHECK(RunCommand({{"command", "pwd"}, {"cwd", "../x"}}).status().message() == "payload.cwd: must not contain '..'");
  CHECK(RunCommand({{"command", "pwd"}, {"cwd", "/etc"}}).status().message() ==
        "payload.cwd: must be relative to the task directory");
  CHECK(RunCommand({{"command", "x"}, {"argv", {"y"}}}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(RunCommand({{"argv", {"no-such-program-rc"}}}).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("A command that backgrounds a grandchild and times out leaves no process behind") {
  absl::Time start = absl::Now();
  auto out = RunCommand({{"command", "sleep 60 & echo $!; sleep 60"}, {"timeout", 0.5}});
  REQUIRE(out.ok());
  CHECK(out->failure.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::Now() - start < absl::Seconds(5));
  int grandchild = 0;
  REQUIRE(absl::SimpleAtoi(absl::StripAsciiWhitespace(out->stdout), &grandchild));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = Gone(grandchild);
    if (!gone) absl::SleepFor(absl::Milliseconds(20));
  }
  CHECK(gone);
}

TEST_CASE("The task deadline (stop token) stops a command promptly") {
  absl::Time start = absl::Now();
  auto out = RunCommand({{"command", "sleep 60"}}, absl::Milliseconds(300));
  REQUIRE(out.ok());
  CHECK(absl::Now() - start < absl::Seconds(3));
}

TEST_CASE("Output beyond the cap is dropped and marked, usage is reported") {
  auto out = RunCommand({{"command", "head -c 300000 /dev/zero | tr '\\\\0' x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"}},
                        absl::Seconds(20), 4096);
  REQUIRE(out.ok());
  CHECK(out->stdout.size() < 4200);
  CHECK(out->stdout.find("[output truncated at 4096 bytes]") != std::string::npos);
  CHECK(out->usage.peak_rss_bytes() > 0);
  CHECK(out->usage.cpu_seconds() > 0);
}

}  // namespace rc::worker

namespace rc::worker {

TEST_CASE("A task process inherits no descriptor of the worker but stdin, stdout and stderr") {
  FILE* leaky = std::fopen("/tmp/rc-fd-leak-test", "w");  // not close-on-exec
  REQUIRE(leaky != nullptr);
  auto out = RunCommand({{"command", "ls /proc/$$/fd"}});
  std::fclose(leaky);
  std::remove("/tmp/rc-fd-leak-test");
  REQUIRE(out.ok());
  CHECK(out->stdout == "0\n1\n2\n");
}

}  // namespace rc::worker
