// python_script with a locally built wheel (python_index_url a local directory: no
// network), and the requirement policy (python_requirements names | any).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/venv_cache.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

struct Env {
  fs::path root = fs::temp_directory_path() / NewId("rc-pyscript-test");
  std::unique_ptr<Handler> handler;
  explicit Env(const std::string& requirements = "names") {
    fs::create_directories(root / "wheels");
    std::string cmd = "/usr/bin/python3 " RC_SOURCE_DIR "/tests/fixtures/make_wheel.py " + (root / "wheels").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    ExecutionOptions o;
    o.work_root = (root / "data" / "tasks").string();
    PythonScriptOptions py;
    py.requirements = requirements;
    py.index_url = (root / "wheels").string();
    auto h = MakePythonScriptHandler(o, py);
    REQUIRE(h.ok());
    handler = std::move(*h);
  }
  ~Env() {
    std::error_code ec;  // virtualenvs are read-only once built
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(root, ec);
  }
  absl::StatusOr<HandlerOutput> Run(const nlohmann::json& payload) {
    StopToken stop(absl::Now() + absl::Seconds(120));
    return handler->Run(TaskContext{NewId("task"), 1, payload.dump(), &stop, {}, nullptr});
  }
};

const nlohmann::json kGreet = {{"code", "import rcgreet\nprint(rcgreet.greet('cluster'))\n"},
                               {"requirements", {"rcgreet"}}};

}  // namespace

TEST_CASE("python_script installs a requirement from a local wheel, then reuses the environment") {
  Env env;
  absl::Time t0 = absl::Now();
  auto first = env.Run(kGreet);
  absl::Duration cold = absl::Now() - t0;
  REQUIRE(first.ok());
  INFO(first->stderr);
  CHECK(first->failure.ok());
  CHECK(first->stdout == "hello cluster\n");
  CHECK(nlohmann::json::parse(first->result)["environment_created"] == true);

  t0 = absl::Now();
  auto second = env.Run(kGreet);
  absl::Duration warm = absl::Now() - t0;
  REQUIRE(second.ok());
  CHECK(second->stdout == "hello cluster\n");
  CHECK(nlohmann::json::parse(second->result)["environment_created"] == false);
  CHECK(nlohmann::json::parse(second->result)["environment"] == nlohmann::json::parse(first->result)["environment"]);
  INFO("cold " << absl::FormatDuration(cold) << ", warm " << absl::FormatDuration(warm));
  CHECK(warm * 3 < cold);

  auto plain = env.Run({{"code", "import sys; print(40 + 2); sys.exit(5)"}});
  REQUIRE(plain.ok());
  CHECK(plain->stdout == "42\n");
  CHECK(plain->exit_code == 5);
  CHECK(plain->failure.message() == "exit code 5");
}

TEST_CASE("python_script names a package pip cannot install") {
  Env env;
  auto out = env.Run({{"code", "print(1)"}, {"requirements", {"rc-no-such-package==9.9"}}});
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(std::string(out.status().message()), Catch::StartsWith("pip could not install 'rc-no-such-package==9.9'"));
}

TEST_CASE("python_script refuses requirements that look like pip options") {
  Env env;
  auto out = env.Run({{"code", "print(1)"}, {"requirements", {"--index-url=http://evil.example/"}}});
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().message() ==
        "payload.requirements: '--index-url=http://evil.example/' looks like a pip option; only requirements are allowed");
}

TEST_CASE("Concurrent tasks with the same requirements build the environment once") {
  Env env;
  std::vector<bool> created(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      auto out = env.Run(kGreet);
      created[i] = out.ok() && nlohmann::json::parse(out->result)["environment_created"] == true;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(std::count(created.begin(), created.end(), true) == 1);
}

TEST_CASE("A task waiting for another task's environment build stops when it is cancelled") {
  Env env;
  std::thread builder([&] { CHECK(env.Run(kGreet).ok()); });
  absl::SleepFor(absl::Milliseconds(300));  // let the builder take the environment's lock first
  StopToken stop(absl::Now() + absl::Seconds(60));
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    stop.Cancel();
  });
  absl::Time start = absl::Now();
  auto out = env.handler->Run(TaskContext{"task-waiter", 1, kGreet.dump(), &stop, {}, nullptr});
  absl::Duration waited = absl::Now() - start;
  canceller.join();
  builder.join();
  // Building a venv takes seconds (pip is bootstrapped into it); the waiter gives up
  // within a fraction of one.
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == absl::StatusCode::kAborted);
  CHECK(waited < absl::Seconds(1));
}

TEST_CASE("Requirement sets are normalised before hashing") {
  CHECK(VenvCache::Normalize({" Foo_Bar>=1 ", "numpy", "foo-bar>=1", ""}) ==
        std::vector<std::string>{"foo-bar>=1", "numpy"});
  CHECK(VenvCache::Key("3.11", VenvCache::Normalize({"B", "a"})) == VenvCache::Key("3.11", {"a", "b"}));
  CHECK(VenvCache::Key("3.11", {"a"}) != VenvCache::Key("3.12", {"a"}));
  CHECK(PipError("ERROR: Could not find a version that satisfies the requirement zzz (from versions: none)\n"
                 "ERROR: No matching distribution found for zzz\n") ==
        "pip could not install 'zzz': No matching distribution found for zzz");
}

}  // namespace rc::worker

namespace rc::worker {

TEST_CASE("python_script under names refuses local paths, URLs and VCS requirements before running anything") {
  Env env;
  for (const char* requirement : {"/tmp/pkg", "../../pkg", "https://example.invalid/pkg-1.0.tar.gz",
                                  "git+https://example.invalid/pkg.git", "pkg @ file:///tmp/pkg", "-e /tmp/pkg"}) {
    INFO(requirement);
    auto out = env.Run({{"code", "print(1)"}, {"requirements", {"rcgreet", requirement}}});
    REQUIRE_FALSE(out.ok());
    // Permanent only where every worker refuses (a relative path, an option); the rest
    // a python_requirements: any worker would run.
    const bool permanent = requirement[0] == '.' || requirement[0] == '-';
    CHECK(out.status().code() ==
          (permanent ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kFailedPrecondition));
    CHECK_THAT(std::string(out.status().message()),
               Catch::StartsWith(std::string("payload.requirements: '") + requirement + "'"));
  }
  // Nothing was built for them.
  CHECK((!fs::exists(env.root / "data" / "venvs") || fs::is_empty(env.root / "data" / "venvs")));
}

TEST_CASE("python_script installs wheels only under names, so no package code runs at install") {
  Env env;
  // An sdist-only package in the local index: pip refuses to build it under names.
  const fs::path src = env.root / "src" / "rcsdist";
  fs::create_directories(src);
  std::ofstream(src / "setup.py") << "from setuptools import setup\nsetup(name='rcsdist', version='1.0')\n";
  const std::string cmd = "cd " + (env.root / "src").string() + " && tar czf " +
                          (env.root / "wheels" / "rcsdist-1.0.tar.gz").string() + " rcsdist";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto out = env.Run({{"code", "print(1)"}, {"requirements", {"rcsdist"}}});
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(std::string(out.status().message()), Catch::StartsWith("pip could not install 'rcsdist'"));
}

}  // namespace rc::worker
