// A task's environment reaches only the inside of its sandbox (issue 12, repro 1), and
// the `command` handler refuses the variable families no task may set. The bwrap cases
// run for real on this machine and say SKIPPED with a WARN where bwrap is unavailable.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/process/containment.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/task_env.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// NUL-separated /proc entries (environ, cmdline) as a list.
std::vector<std::string> ProcList(int pid, const char* what) {
  std::vector<std::string> out;
  for (absl::string_view s : absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/", what)), '\0', absl::SkipEmpty())) {
    out.emplace_back(s);
  }
  return out;
}

// Files in `dir` whose name starts with `prefix` (LD_DEBUG_OUTPUT appends ".PID").
int CountWithPrefix(const fs::path& dir, const std::string& prefix) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += absl::StartsWith(e.path().filename().string(), prefix);
  return n;
}

// A worker's data dir (holding a stand-in worker key) and a secret token file outside
// it, with the tier's containment; all removed afterwards.
struct Worker {
  WorkerConfig config;
  fs::path token = fs::current_path() / NewId("rc-env-test-token");
  absl::StatusOr<std::shared_ptr<const Containment>> containment = absl::UnknownError("not made");

  explicit Worker(const std::string& tier) {
    config.data_dir = (fs::temp_directory_path() / NewId("rc-env-test")).string();
    fs::create_directories(config.data_dir);
    std::ofstream(fs::path(config.data_dir) / "worker_key.pem") << "KEY-SECRET-1234";
    std::ofstream(token) << "TOKEN-SECRET-5678";
    config.token_file = token.string();
    config.containment = tier;
    containment = Containment::Create(config);
  }
  ~Worker() {
    std::error_code ec;
    fs::remove_all(config.data_dir, ec);
    fs::remove(token, ec);
  }
  ExecutionOptions options() const { return ExecutionOptions::FromConfig(config, *containment); }
};

bool NoBwrap(const Worker& w) {
  if (w.containment.ok()) return false;
  WARN("SKIPPED: bwrap containment is unavailable here: " << w.containment.status().message());
  return true;
}

absl::StatusOr<HandlerOutput> RunCommand(const ExecutionOptions& options, const nlohmann::json& payload,
                                         std::function<void(int)> on_start = nullptr) {
  StopToken stop(absl::Now() + absl::Seconds(20));
  TaskContext ctx{NewId("task"), 1, payload.dump(), &stop, {}, std::move(on_start), false};
  return MakeCommandHandler(options)->Run(ctx);
}

}  // namespace

TEST_CASE("bwrap: bwrap itself gets a fixed environment, the task's variables are set inside only") {
  Worker w("bwrap");
  if (NoBwrap(w)) return;
  setenv("RC_WORKER_ONLY_SECRET", "worker-env-value", 1);  // the worker's own environment
  std::vector<std::string> bwrap_env, bwrap_cmdline;
  // The task reads a line first, and the runner writes stdin only after this callback
  // returns: bwrap is alive (not yet reaped) while its /proc entries are read.
  auto out = RunCommand(w.options(),
                        {{"argv", {"/bin/sh", "-c", "read line; env"}},
                         {"stdin", "go\n"},
                         {"env", {{"TASK_SECRET", "task-value-42"}, {"LANGUAGE", "de"}}}},
                        [&](int pid) {
                          bwrap_env = ProcList(pid, "environ");
                          bwrap_cmdline = ProcList(pid, "cmdline");
                        });
  unsetenv("RC_WORKER_ONLY_SECRET");
  REQUIRE(out.ok());
  INFO(out->stderr);
  CHECK(out->exit_code == 0);
  REQUIRE(!bwrap_cmdline.empty());
  CHECK_THAT(bwrap_cmdline[0], Catch::EndsWith("bwrap"));
  // bwrap's own environment: the fixed host set, nothing of the task's or the worker's.
  std::vector<std::string> names;
  for (const std::string& kv : bwrap_env) names.push_back(kv.substr(0, kv.find('=')));
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"HOME", "LANG", "PATH", "TMPDIR"});
  // Nor are the task's values on bwrap's command line, where any user could read them.
  for (const std::string& arg : bwrap_cmdline) CHECK(arg.find("task-value-42") == std::string::npos);
  // Inside: the task's variables and the task's base environment, nothing of the worker's.
  CHECK_THAT(out->stdout, Catch::Contains("TASK_SECRET=task-value-42\n") && Catch::Contains("LANGUAGE=de\n") &&
                              Catch::Contains("LANG=C.UTF-8\n") && Catch::Contains("PATH=/usr/local/bin:/usr/bin:/bin\n"));
  CHECK(out->stdout.find("worker-env-value") == std::string::npos);
}

TEST_CASE("bwrap: loader variables that reach the sandbox act inside it only, never in bwrap (repro 1)") {
  // The structural fix on its own: the policy is bypassed and LD_DEBUG_OUTPUT and
  // LD_PRELOAD go straight into a contained process's environment, as they reached
  // bwrap before. bwrap must not be loaded with them; inside, the root is read-only and
  // the worker's key and token are hidden.
  Worker w("bwrap");
  if (NoBwrap(w)) return;
  const std::string debug_prefix = NewId("rc-ld-debug");
  const fs::path marker = fs::path("/var/tmp") / NewId("rc-preload-marker");
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo ran"};
  spec.env = {"PATH=/usr/bin:/bin",
              "LD_DEBUG=libs",
              absl::StrCat("LD_DEBUG_OUTPUT=/var/tmp/", debug_prefix),
              "LD_PRELOAD=" RC_PRELOAD_PROBE,
              absl::StrCat("PROBE_HOST_MARKER=", marker.string()),
              absl::StrCat("PROBE_SECRET=", w.config.data_dir, "/worker_key.pem")};
  const fs::path dir = fs::path(w.config.data_dir) / "tasks" / NewId("t");
  fs::create_directories(dir);
  spec.cwd = dir.string();
  absl::StatusOr<AppliedContainment> applied = (*w.containment)->Apply({dir.string(), {}, {}}, false, "env-test", &spec);
  REQUIRE(applied.ok());
  StopToken stop(absl::Now() + absl::Seconds(20));
  absl::StatusOr<ProcessResult> r = RunProcess(spec, stop);
  REQUIRE(r.ok());
  INFO(r->stderr);
  CHECK(r->exit_code == 0);
  // LD_DEBUG acted inside: the loader traced the sandbox's PID 2 (bwrap's init is 1),
  // and, unable to open its output file on the read-only root, wrote to the task's own
  // stdout.
  CHECK_THAT(r->stdout, Catch::EndsWith("ran\n") && Catch::Contains("2:\tinitialize program: /bin/sh"));
  // The probe ran in the task's shell, not in bwrap; it could write no marker and read
  // no key (the data dir is an empty tmpfs inside).
  CHECK_THAT(r->stderr, Catch::Contains("probe loaded in sh"));
  CHECK_THAT(r->stderr, !Catch::Contains("probe loaded in bwrap"));
  CHECK_THAT(r->stderr, !Catch::Contains("KEY-SECRET"));
  CHECK_THAT(r->stderr, Catch::Contains("probe secret: No such file or directory"));
  CHECK_THAT(r->stderr, Catch::Contains("probe marker: Read-only file system"));
  CHECK(!fs::exists(marker));
  CHECK(CountWithPrefix("/var/tmp", debug_prefix) == 0);
  std::error_code ec;
  fs::remove(marker, ec);

  // The same for the token file outside the data dir: covered with /dev/null.
  spec = ProcessSpec();
  spec.argv = {"/bin/true"};
  spec.env = {"PATH=/usr/bin:/bin", "LD_PRELOAD=" RC_PRELOAD_PROBE, absl::StrCat("PROBE_SECRET=", w.token.string())};
  spec.cwd = dir.string();
  applied = (*w.containment)->Apply({dir.string(), {}, {}}, false, "env-test", &spec);
  REQUIRE(applied.ok());
  r = RunProcess(spec, stop);
  REQUIRE(r.ok());
  // /dev/null bound over it: read as empty, or refused where the mount forbids devices.
  CHECK_THAT(r->stderr, Catch::Contains("probe loaded in true") &&
                            (Catch::Contains("probe secret: (empty)") || Catch::Contains("probe secret: Permission denied")));
  CHECK_THAT(r->stderr, !Catch::Contains("TOKEN-SECRET") && !Catch::Contains("probe loaded in bwrap"));
}

TEST_CASE("process tier: the task process is the only one that gets its variables") {
  Worker w("process");
  REQUIRE(w.containment.ok());
  auto out = RunCommand(w.options(), {{"argv", {"/bin/sh", "-c", "echo \"$GREETING\""}}, {"env", {{"GREETING", "hi"}}}});
  REQUIRE(out.ok());
  CHECK(out->stdout == "hi\n");
}

TEST_CASE("command refuses the repro of issue 12 and each dangerous family, naming the variable and its family") {
  Worker w("process");
  REQUIRE(w.containment.ok());
  struct Case {
    std::map<std::string, std::string> env;
    std::string message;
  };
  const std::vector<Case> cases = {
      // repro 1, as submitted
      {{{"LD_DEBUG", "libs"}, {"LD_DEBUG_OUTPUT", "/var/tmp/x"}}, "payload.env.LD_DEBUG: refused, a loader variable"},
      // loader
      {{{"LD_PRELOAD", "/tmp/evil.so"}}, "payload.env.LD_PRELOAD: refused, a loader variable"},
      {{{"LD_LIBRARY_PATH", "/tmp"}}, "payload.env.LD_LIBRARY_PATH: refused, a loader variable"},
      {{{"LD_AUDIT", "/tmp/a.so"}}, "payload.env.LD_AUDIT: refused, a loader variable"},
      {{{"GLIBC_TUNABLES", "glibc.malloc.check=3"}}, "payload.env.GLIBC_TUNABLES: refused, a loader variable"},
      // locale / iconv
      {{{"GCONV_PATH", "/tmp/gconv"}}, "payload.env.GCONV_PATH: refused, a locale/iconv variable"},
      {{{"LOCPATH", "/tmp/loc"}}, "payload.env.LOCPATH: refused, a locale/iconv variable"},
      {{{"NLSPATH", "/tmp/%N"}}, "payload.env.NLSPATH: refused, a locale/iconv variable"},
      {{{"HOSTALIASES", "/tmp/h"}}, "payload.env.HOSTALIASES: refused, a locale/iconv variable"},
      // library and module loading
      {{{"OPENSSL_CONF", "/tmp/evil.cnf"}}, "payload.env.OPENSSL_CONF: refused, a library/module loading variable"},
      {{{"GIT_SSH_COMMAND", "sh -c id"}}, "payload.env.GIT_SSH_COMMAND: refused, a library/module loading variable"},
      {{{"CLASSPATH", "/tmp"}}, "payload.env.CLASSPATH: refused, a library/module loading variable"},
      // interpreter start-up hooks
      {{{"PYTHONSTARTUP", "/tmp/s.py"}}, "payload.env.PYTHONSTARTUP: refused, an interpreter start-up hook"},
      {{{"PYTHONPATH", "/tmp"}}, "payload.env.PYTHONPATH: refused, an interpreter start-up hook"},
      {{{"PYTHONHOME", "/tmp"}}, "payload.env.PYTHONHOME: refused, an interpreter start-up hook"},
      {{{"PYTHONUSERBASE", "/tmp"}}, "payload.env.PYTHONUSERBASE: refused, an interpreter start-up hook"},
      {{{"PERL5OPT", "-Mevil"}}, "payload.env.PERL5OPT: refused, an interpreter start-up hook"},
      {{{"PERL5LIB", "/tmp"}}, "payload.env.PERL5LIB: refused, an interpreter start-up hook"},
      {{{"RUBYOPT", "-revil"}}, "payload.env.RUBYOPT: refused, an interpreter start-up hook"},
      {{{"NODE_OPTIONS", "--require /tmp/x.js"}}, "payload.env.NODE_OPTIONS: refused, an interpreter start-up hook"},
      {{{"BASH_ENV", "/tmp/x.sh"}}, "payload.env.BASH_ENV: refused, an interpreter start-up hook"},
      {{{"ENV", "/tmp/x.sh"}}, "payload.env.ENV: refused, an interpreter start-up hook"},
      // reserved and malformed
      {{{"PATH", "/tmp"}}, "payload.env.PATH: refused, reserved, set by the worker"},
      {{{"RETIRE_CLUSTER_TOKEN", "x"}}, "payload.env.RETIRE_CLUSTER_TOKEN: refused, reserved, set by the worker"},
      {{{"BAD=NAME", "x"}}, "payload.env[\"BAD=NAME\"]: refused, not a variable name"},
      {{{"OK_NAME", std::string("a\0b", 3)}}, "payload.env.OK_NAME: refused, the value holds a NUL byte"},
  };
  const fs::path marker_dir = fs::path(w.config.data_dir);
  for (const Case& c : cases) {
    INFO(c.message);
    // The command would leave a marker if it ran at all.
    auto out = RunCommand(w.options(), {{"argv", {"/bin/sh", "-c", "touch " + (marker_dir / "ran").string()}},
                                        {"env", c.env}});
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(out.status().message()), Catch::StartsWith(c.message));
    CHECK(!fs::exists(marker_dir / "ran"));
  }
  // Ordinary variables, and the harmless PYTHON* ones, pass.
  auto out = RunCommand(w.options(), {{"argv", {"/bin/sh", "-c", "echo $APP_MODE $PYTHONUNBUFFERED $LC_ALL"}},
                                      {"env", {{"APP_MODE", "prod"}, {"PYTHONUNBUFFERED", "1"}, {"LC_ALL", "C"}}}});
  REQUIRE(out.ok());
  CHECK(out->stdout == "prod 1 C\n");
}

TEST_CASE("bwrap: the repro of issue 12 through the command handler writes nothing on the host") {
  Worker w("bwrap");
  if (NoBwrap(w)) return;
  const std::string prefix = NewId("rc-ld-debug");
  auto out = RunCommand(w.options(), {{"argv", {"true"}},
                                      {"env", {{"LD_DEBUG", "libs"}, {"LD_DEBUG_OUTPUT", "/var/tmp/" + prefix}}}});
  REQUIRE_FALSE(out.ok());
  CHECK(out.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(CountWithPrefix("/var/tmp", prefix) == 0);
}

}  // namespace rc::worker
