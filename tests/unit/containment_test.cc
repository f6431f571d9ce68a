// Containment for real: tasks run through the `command` handler of a worker whose
// containment is `bwrap` (and `process` for the cgroup limits), on this machine. Where
// the machine lacks something (bwrap, user namespaces, the pids controller) the test
// says so with WARN and stops, rather than passing without checking.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/loopback_listener.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/process/containment.h"
#include "worker/handlers/opt_in_handlers.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

// A worker's data dir and containment, removed afterwards.
struct Sandbox {
  WorkerConfig config;
  absl::StatusOr<std::shared_ptr<const Containment>> containment = absl::UnknownError("not made");

  explicit Sandbox(const std::string& tier, int pids_max = 1024, int memory_mb = 0) {
    config.data_dir = (fs::temp_directory_path() / NewId("rc-contain-test")).string();
    config.containment = tier;
    config.cgroup_pids_max = pids_max;
    config.cgroup_memory_mb = memory_mb;
    containment = Containment::Create(config);
  }
  ~Sandbox() {
    // Virtualenvs are made read-only by VenvCache: writable again, then removed.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(config.data_dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(config.data_dir, ec);
  }

  absl::StatusOr<HandlerOutput> Run(const nlohmann::json& payload, bool internet = false,
                                    absl::Duration limit = absl::Seconds(20)) {
    auto handler = MakeCommandHandler(ExecutionOptions::FromConfig(config, *containment));
    StopToken stop(absl::Now() + limit);
    TaskContext ctx{NewId("task"), 1, payload.dump(), &stop, {}, nullptr, internet};
    return handler->Run(ctx);
  }
};

// True (with a WARN naming why) when this machine cannot run bwrap sandboxes.
bool NoBwrap(const Sandbox& s) {
  if (s.containment.ok()) return false;
  WARN("SKIPPED: bwrap containment is unavailable here: " << s.containment.status().message());
  return true;
}

using Listener = rc::testing::LoopbackListener;

bool ProcessWithArgExists(const std::string& arg) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(arg) != std::string::npos && cmdline.find("sleep") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("containment: an unavailable tier is refused with a message naming it and why") {
  WorkerConfig config;
  config.data_dir = (fs::temp_directory_path() / NewId("rc-contain-test")).string();
  config.containment = "bwrap";
  auto c = Containment::Create(config, "/nonexistent-bin");
  REQUIRE(!c.ok());
  CHECK(c.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(c.status().message()),
             Catch::StartsWith("containment bwrap is unavailable: no bwrap program on PATH (/nonexistent-bin)"));

  // A bwrap that cannot make namespaces (as where user namespaces are disabled).
  const fs::path fake = fs::path(config.data_dir) / "fake-bin";
  fs::create_directories(fake);
  std::ofstream(fake / "bwrap") << "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n";
  fs::permissions(fake / "bwrap", fs::perms::owner_all);
  c = Containment::Create(config, fake.string());
  REQUIRE(!c.ok());
  CHECK(c.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(c.status().message()),
             Catch::StartsWith("containment bwrap is unavailable: a trial sandbox (" + (fake / "bwrap").string()) &&
                 Catch::Contains("failed with exit code 1: bwrap: No permissions to create new namespace") &&
                 Catch::Contains("User namespaces may be disabled"));
  fs::remove_all(config.data_dir);

  Sandbox process("process");
  REQUIRE(process.containment.ok());
  CHECK((*process.containment)->tier() == "process");
}

TEST_CASE("bwrap: WouldExpose covers the host's /tmp and /dev/shm (private in tasks) and the data dir") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  const Containment& c = **s.containment;
  // A symlink from outside /tmp into it counts as /tmp.
  const fs::path link = fs::current_path() / NewId("rc-tmp-link");
  fs::create_directory_symlink("/tmp", link);
  for (const std::string& p : {std::string("/tmp"), std::string("/tmp/rc-token"), std::string("/tmp/a/b/"),
                               std::string("/dev/shm"), std::string("/dev/shm/key"), std::string("/dev"),
                               std::string("/"), s.config.data_dir, s.config.data_dir + "/venvs",
                               (link / "rc-token").string()}) {
    INFO(p);
    CHECK(c.WouldExpose(p));
  }
  for (const char* p : {"/usr/lib", "/var/tmp/x", "/tmpfoo", "/dev/null", "/etc/hostname"}) {
    INFO(p);
    CHECK_FALSE(c.WouldExpose(p));
  }
  fs::remove(link);
  Sandbox process("process");
  REQUIRE(process.containment.ok());
  CHECK_FALSE((*process.containment)->WouldExpose("/tmp/rc-token"));
}

TEST_CASE("bwrap: the environment memfd is never fd 0-2, even in a worker started with them closed") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child reports by exit code only: it has no stdout or stderr left.
    close(0);
    close(1);
    close(2);
    int code = 0;
    {  // applied ends here, so that its cgroup is removed before _exit
      ProcessSpec spec;
      spec.argv = {"/bin/true"};
      spec.env = {"A=1"};
      absl::StatusOr<AppliedContainment> applied =
          (*s.containment)->Apply({s.config.data_dir, {}}, false, "fd-test", &spec);
      code = !applied.ok() ? 2 : applied->env_fd <= 2 ? 3 : 0;
      char head[sizeof("--clearenv")] = {};
      if (code == 0 && (pread(applied->env_fd, head, sizeof(head), 0) != sizeof(head) ||
                        std::string(head, sizeof(head)) != std::string("--clearenv", sizeof(head)))) {
        code = 4;
      }
    }
    _exit(code);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 2: Apply failed, 3: memfd on fd 0-2, 4: memfd content wrong
}

TEST_CASE("bwrap: a task writes its own dir and a private /tmp, and nothing outside") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  CHECK((*s.containment)->tier() == "bwrap");
  const std::string marker = NewId("rc-host-marker");
  std::ofstream(fs::path("/tmp") / marker) << "host";
  const std::string etc_file = "/etc/" + NewId("rc-escape");
  const std::string data_file = (fs::path(s.config.data_dir) / "escape").string();
  // The test's working directory (the build tree) stands for any other place on the host.
  const std::string home_file = (fs::current_path() / NewId("rc-escape")).string();
  const std::string script = absl::StrCat(
      "echo in > inside.txt && cat inside.txt; "
      "echo tmp > /tmp/t && cat /tmp/t; "
      "test -e /tmp/", marker, " && echo host-tmp-visible; "
      "echo x > ../../escape; echo x > ", data_file, "; echo x > ", etc_file, "; echo x > ", home_file, "; "
      "ls ", s.config.data_dir, "/tasks | wc -l; "  // only its own directory is there
      "exit 0");
  auto out = s.Run({{"command", script}});
  REQUIRE(out.ok());
  INFO(out->stderr);
  CHECK(out->exit_code == 0);
  CHECK(out->stdout == "in\ntmp\n1\n");
  CHECK(!fs::exists(data_file));
  CHECK(!fs::exists(etc_file));
  CHECK(!fs::exists(home_file));
  CHECK_THAT(out->stderr, Catch::Contains("Read-only file system"));
  fs::remove(fs::path("/tmp") / marker);
  fs::remove(etc_file);
  fs::remove(home_file);
}

TEST_CASE("bwrap: no network unless the task requires internet") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  Listener listener;
  REQUIRE(listener.port() > 0);
  nlohmann::json connect = {
      {"argv", {"/bin/bash", "-c", absl::StrCat("exec 3<>/dev/tcp/127.0.0.1/", listener.port(), " && echo connected")}},
      {"timeout", 10}};
  auto cut = s.Run(connect, /*internet=*/false);
  REQUIRE(cut.ok());
  CHECK(cut->exit_code != 0);
  CHECK(cut->stdout.empty());
  CHECK_THAT(cut->stderr, Catch::Contains("Connection refused") || Catch::Contains("unreachable"));

  auto open = s.Run(connect, /*internet=*/true);
  REQUIRE(open.ok());
  INFO(open->stderr);
  CHECK(open->exit_code == 0);
  CHECK(open->stdout == "connected\n");
}

TEST_CASE("bwrap: exit code, output and usage come back, a timeout kills the whole sandbox") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  auto out = s.Run({{"command", "echo out; echo err >&2; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"}});
  REQUIRE(out.ok());
  CHECK(out->stdout == "out\n");
  CHECK(out->stderr == "err\n");
  CHECK(out->exit_code == 3);
  CHECK(out->failure.message() == "exit code 3");
  CHECK(out->usage.cpu_seconds() > 0);
  CHECK(out->usage.peak_rss_bytes() > 0);

  const std::string tag = absl::StrCat(100 + (absl::ToUnixMicros(absl::Now()) % 100000), ".25");
  const absl::Time start = absl::Now();
  auto slow = s.Run({{"command", absl::StrCat("sleep ", tag, " & setsid sleep ", tag, " & sleep ", tag)}, {"timeout", 1}});
  REQUIRE(slow.ok());
  CHECK(slow->failure.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::Now() - start < absl::Seconds(10));
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {  // up to 5 s for the kernel to reap them
    gone = !ProcessWithArgExists(tag);
    if (!gone) absl::SleepFor(absl::Milliseconds(100));
  }
  CHECK(gone);
}

TEST_CASE("cgroups: a bounded fork bomb is stopped by the pids limit, under bwrap and process") {
  for (const char* tier : {"bwrap", "process"}) {
    INFO(tier);
    Sandbox s(tier, /*pids_max=*/64);
    if (std::string(tier) == "bwrap" && NoBwrap(s)) continue;
    REQUIRE(s.containment.ok());
    const std::vector<std::string> limits = (*s.containment)->cgroup_limits();
    if (std::find(limits.begin(), limits.end(), "pids") == limits.end()) {
      WARN("SKIPPED: no pids cgroup controller usable here, so the pids limit is not enforced (" << tier << ")");
      return;
    }
    // Up to 5000 children that sleep, never more: without the limit this would finish.
    const char* bomb =
        "import os, time\n"
        "n, err = 0, ''\n"
        "for _ in range(5000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.strerror\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print(n, err)\n";
    const absl::Time start = absl::Now();
    auto out = s.Run({{"argv", {"python3", "-c", bomb}}, {"timeout", 20}});
    REQUIRE(out.ok());
    INFO(out->stdout << out->stderr);
    CHECK(out->exit_code == 0);
    int forked = -1;
    std::istringstream(out->stdout) >> forked;
    CHECK(forked >= 1);
    CHECK(forked < 64);
    CHECK_THAT(out->stdout, Catch::Contains("Resource temporarily unavailable"));
    CHECK(absl::Now() - start < absl::Seconds(20));
  }
}


TEST_CASE("bwrap: python_eval and python_script run sandboxed, the virtualenv readable but not writable") {
  Sandbox s("bwrap");
  if (NoBwrap(s)) return;
  const ExecutionOptions options = ExecutionOptions::FromConfig(s.config, *s.containment);
  StopToken stop(absl::Now() + absl::Seconds(120));
  auto eval = MakePythonEvalHandler(options)->Run(
      TaskContext{NewId("task"), 1, nlohmann::json{{"expression", "sum(range(10))"}}.dump(), &stop, {}, nullptr, false});
  REQUIRE(eval.ok());
  INFO(eval->stderr);
  CHECK(eval->failure.ok());
  CHECK(eval->result == R"j({"value":45})j");

  auto script = MakePythonScriptHandler(options, PythonScriptOptions{});
  REQUIRE(script.ok());
  // keep_alive makes (in a sandbox of its own) and uses a virtualenv under the hidden data dir.
  const nlohmann::json payload = {
      {"code",
       "import sys\nprint(sys.prefix != sys.base_prefix)\n"
       "try:\n    open(sys.prefix + '/x', 'w')\n    print('wrote')\nexcept OSError as e:\n    print(e.strerror)\n"},
      {"keep_alive", true}};
  auto out = (*script)->Run(TaskContext{NewId("task"), 1, payload.dump(), &stop, {}, nullptr, false});
  REQUIRE(out.ok());
  INFO(out->stderr);
  CHECK(out->failure.ok());
  CHECK_THAT(out->stdout, Catch::StartsWith("True\n") && !Catch::Contains("wrote"));
  CHECK_THAT(out->stdout, Catch::Contains("Read-only file system") || Catch::Contains("Permission denied"));
}

TEST_CASE("cgroups: the memory limit stops a task that allocates past it") {
  Sandbox s("process", 1024, /*memory_mb=*/64);
  REQUIRE(s.containment.ok());
  const std::vector<std::string> limits = (*s.containment)->cgroup_limits();
  if (std::find(limits.begin(), limits.end(), "memory") == limits.end()) {
    WARN("SKIPPED: no memory cgroup controller usable here, so the memory limit is not enforced");
    return;
  }
  // 256 MiB touched page by page, well inside RLIMIT_AS (4 GiB) but four times the cgroup's.
  auto out = s.Run({{"argv", {"python3", "-c", "b = bytearray(256 << 20)\nprint('allocated')"}}, {"timeout", 20}});
  REQUIRE(out.ok());
  INFO(out->stdout << out->stderr);
  CHECK(out->stdout.empty());
  CHECK(out->failure.message() == "killed by signal 9 (Killed)");

  auto small = s.Run({{"argv", {"python3", "-c", "b = bytearray(8 << 20)\nprint('allocated')"}}, {"timeout", 20}});
  REQUIRE(small.ok());
  CHECK(small->stdout == "allocated\n");
}

}  // namespace rc::worker
