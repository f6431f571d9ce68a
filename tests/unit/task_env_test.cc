// The pure policies of issue 12: which variables a task may set, how the sandbox's
// environment is handed to bwrap, which python requirements are accepted, where pip
// gets packages and when an install has the network.
#include <catch2/catch.hpp>

#include "absl/strings/str_split.h"
#include "worker/process/containment.h"
#include "worker/handlers/python_requirements.h"
#include "worker/handlers/task_env.h"

namespace rc::worker {

TEST_CASE("task env policy: loader variables are refused") {
  for (const char* name : {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG", "LD_DEBUG_OUTPUT", "LD_PROFILE",
                           "LD_BIND_NOW", "GLIBC_TUNABLES", "MALLOC_TRACE"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kLoader);
  }
}

TEST_CASE("task env policy: locale and iconv variables are refused") {
  for (const char* name : {"GCONV_PATH", "LOCPATH", "NLSPATH", "I18NPATH", "CHARSETALIASDIR", "TEXTDOMAINDIR", "TZDIR"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kLocale);
  }
  // Choosing a locale by name loads nothing from a path of the task's.
  for (const char* name : {"LANG", "LC_ALL", "LC_CTYPE", "LANGUAGE", "TZ"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kAllowed);
  }
}

TEST_CASE("task env policy: resolver files and library or module loading variables are refused") {
  for (const char* name : {"HOSTALIASES", "RESOLV_HOST_CONF"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kLocale);
  }
  for (const char* name : {"OPENSSL_CONF", "OPENSSL_MODULES", "OPENSSL_ENGINES", "GIO_MODULE_DIR", "GTK_MODULES",
                           "GTK_PATH", "SASL_PATH", "CLASSPATH", "DOTNET_STARTUP_HOOKS", "CORECLR_PROFILER",
                           "CORECLR_ENABLE_PROFILING", "GIT_SSH_COMMAND", "GIT_SSH", "GIT_EXEC_PATH", "GIT_CONFIG",
                           "GIT_CONFIG_GLOBAL", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_PARAMETERS",
                           "LESSOPEN", "LESSCLOSE"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kModuleLoading);
  }
  for (const char* name : {"TCLLIBPATH", "LUA_PATH", "LUA_CPATH", "LUA_INIT", "LUA_INIT_5_4", "PROMPT_COMMAND",
                           "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kStartupHook);
  }
  // Names that merely resemble them load nothing.
  for (const char* name : {"OPENSSL_FIPS_X", "GITHUB_TOKEN", "LESS", "CLASSPATH_X", "GTKX"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kAllowed);
  }
}

TEST_CASE("task env policy: interpreter start-up hooks are refused") {
  for (const char* name : {"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS",
                           "PYTHONBREAKPOINT", "PYTHONEXECUTABLE", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT",
                           "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "BASH_ENV", "ENV", "SHELLOPTS", "PS4",
                           "BASH_FUNC_ls", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "LUA_INIT", "LUA_INIT_5_4"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kStartupHook);
  }
  for (const char* name : {"PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE",
                           "NODE_ENV", "PERL_MM_USE_DEFAULT"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kAllowed);
  }
}

TEST_CASE("task env policy: reserved and malformed names, ordinary names pass") {
  for (const char* name : {"PATH", "HOME", "TMPDIR", "RETIRE_CLUSTER_TOKEN", "RC_ANYTHING"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kReserved);
  }
  for (const char* name : {"", "1ABC", "A-B", "A=B", "A B", "BASH_FUNC_ls%%", "ÄPFEL"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kMalformed);
  }
  CHECK(ClassifyTaskVariable(std::string(kMaxEnvNameLength + 1, 'A')) == EnvFamily::kMalformed);
  for (const char* name : {"FOO", "_x", "API_TOKEN", "a1", "MALLOC_ARENA_MAX", "LDAP_URI", "RCX"}) {
    INFO(name);
    CHECK(ClassifyTaskVariable(name) == EnvFamily::kAllowed);
  }
  CHECK(CheckTaskEnv({{"FOO", "1"}, {"BAR", ""}}, "payload.env").ok());
  absl::Status s = CheckTaskEnv({{"FOO", "1"}, {"LD_PRELOAD", "/x.so"}}, "payload.env");
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.message() ==
        "payload.env.LD_PRELOAD: refused, a loader variable (LD_*, GLIBC_TUNABLES, MALLOC_TRACE); a task sets only its "
        "own variables");
  // A malformed name is escaped, never echoed raw.
  s = CheckTaskEnv({{"A\nB", "1"}}, "payload.env");
  CHECK_THAT(std::string(s.message()), Catch::StartsWith("payload.env[\"A\\nB\"]: refused, not a variable name"));
}

TEST_CASE("the fixed host environment holds PATH, HOME, TMPDIR and LANG only") {
  CHECK(HostEnvironment("/d") ==
        std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/d", "TMPDIR=/d", "LANG=C.UTF-8"});
}

TEST_CASE("bwrap reads the sandbox's environment from a descriptor, never from its own") {
  auto args = BwrapEnvArgs({"A=1", "B=x=y", "C="});
  REQUIRE(args.ok());
  const std::vector<std::string> parts = absl::StrSplit(*args, '\0');
  CHECK(parts == std::vector<std::string>{"--clearenv", "--setenv", "A", "1", "--setenv", "B", "x=y", "--setenv", "C",
                                          "", ""});
  // A NUL would split a value into further bwrap options.
  CHECK(BwrapEnvArgs({std::string("A=1\0--bind\0/\0/x", 15)}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(BwrapEnvArgs({"NOEQUALS"}).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(BwrapEnvArgs({"=x"}).status().code() == absl::StatusCode::kInvalidArgument);

  BwrapPlan plan;
  plan.bwrap = "/usr/bin/bwrap";
  plan.paths = {"/d/tasks/t", {}, {"/d/venvs/v"}};
  plan.env_args_fd = 7;
  std::vector<std::string> a = BwrapArgv(plan, {"/bin/true"});
  auto at = [&](const std::vector<std::string>& seq) {
    auto it = std::search(a.begin(), a.end(), seq.begin(), seq.end());
    return it == a.end() ? -1 : static_cast<int>(it - a.begin());
  };
  CHECK(at({"--args", "7"}) > 0);
  CHECK(at({"--args", "7"}) < at({"--"}));
  CHECK(at({"--bind", "/d/venvs/v", "/d/venvs/v"}) > 0);
  CHECK(at({"--clearenv"}) == -1);
  plan.env_args_fd = -1;  // no environment given: the sandbox starts with none
  a = BwrapArgv(plan, {"/bin/true"});
  CHECK(at({"--clearenv"}) > 0);
  CHECK(at({"--clearenv"}) < at({"--"}));
}

TEST_CASE("python requirements: names accepts package names with extras and version specifiers only") {
  for (const char* ok : {"numpy", "Foo_Bar.baz", "requests[socks]>=2.28,<3", "requests [ socks , security ]",
                         "foo (==1.0)", "foo==1.0.post1+local", "foo~=1.4", "foo===weird", "foo != 2.0 , >= 1",
                         " numpy ", "a"}) {
    INFO(ok);
    CHECK(IsNamedRequirement(ok));
    CHECK(CheckRequirement(ok, "names").ok());
  }
  for (const char* bad : {"/tmp/pkg", "../../pkg", "./pkg", "https://example.invalid/pkg.whl",
                          "git+https://example.invalid/pkg.git", "pkg @ https://example.invalid/pkg.whl",
                          "pkg @ file:///tmp/pkg", "file:///tmp/pkg.tar.gz", "pkg; python_version < '4'",
                          "pkg==", "pkg>>1", "-e /tmp/pkg", "--index-url=http://evil/", "pkg[", "pkg (==1",
                          "-pkg", "pkg-", "", "pkg==1 extra", "pkg\n==1"}) {
    INFO(bad);
    CHECK_FALSE(IsNamedRequirement(bad));
    CHECK_FALSE(CheckRequirement(bad, "names").ok());
  }
  // Refused by every worker (the payload alone decides): permanent.
  for (const char* bad : {"../../pkg", "./pkg", "-e /tmp/pkg", "--index-url=http://evil/", "-pkg", "pkg\n==1"}) {
    INFO(bad);
    CHECK(CheckRequirement(bad, "names").code() == absl::StatusCode::kInvalidArgument);
  }
  // A python_requirements: any worker would install these: this worker's refusal only.
  for (const char* other : {"/tmp/pkg", "https://example.invalid/pkg.whl", "git+https://example.invalid/pkg.git",
                            "pkg @ file:///tmp/pkg", "file:///tmp/pkg.tar.gz", "pkg; python_version < '4'"}) {
    INFO(other);
    CHECK(CheckRequirement(other, "names").code() == absl::StatusCode::kFailedPrecondition);
  }
  CHECK_FALSE(IsNamedRequirement(std::string(kMaxRequirementLength + 1, 'a')));
  CHECK(CheckRequirement("/tmp/pkg", "names").message() ==
        "payload.requirements: '/tmp/pkg' is not a package name with optional extras and version specifiers; this "
        "worker has python_requirements: names (local paths, URLs and VCS requirements need python_requirements: any)");
}

TEST_CASE("python requirements: any accepts paths, URLs and VCS, but never options or relative paths") {
  for (const char* ok : {"/tmp/pkg", "https://example.invalid/pkg.whl", "git+https://example.invalid/pkg.git",
                         "pkg @ file:///tmp/pkg", "numpy>=1"}) {
    INFO(ok);
    CHECK(CheckRequirement(ok, "any").ok());
  }
  CHECK(CheckRequirement("-e /tmp/pkg", "any").message() ==
        "payload.requirements: '-e /tmp/pkg' looks like a pip option; only requirements are allowed");
  CHECK(CheckRequirement("--index-url=http://evil/", "any").code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(CheckRequirement("../../pkg", "any").message()),
             Catch::StartsWith("payload.requirements: '../../pkg' is a relative path"));
  CHECK(CheckRequirement("./pkg", "any").code() == absl::StatusCode::kInvalidArgument);

  CHECK(LocalRequirementPath("/tmp/pkg") == "/tmp/pkg");
  CHECK(LocalRequirementPath("/tmp/pkg[extra]") == "/tmp/pkg");
  CHECK(LocalRequirementPath("file:///tmp/p.tar.gz#egg=p") == "/tmp/p.tar.gz");
  CHECK(LocalRequirementPath("p @ file:///srv/p") == "/srv/p");
  CHECK(LocalRequirementPath("p @ https://example.invalid/p.whl") == "");
  CHECK(LocalRequirementPath("numpy") == "");
}

TEST_CASE("python package source and the install's network") {
  auto def = ParsePackageSource("");
  REQUIRE(def.ok());
  CHECK(def->remote);
  CHECK(def->pip_args.empty());
  auto remote = ParsePackageSource("https://pypi.internal/simple");
  REQUIRE(remote.ok());
  CHECK(remote->pip_args == std::vector<std::string>{"--index-url", "https://pypi.internal/simple"});
  auto local = ParsePackageSource("file:///srv/wheels");
  REQUIRE(local.ok());
  CHECK_FALSE(local->remote);
  CHECK(local->local_dir == "/srv/wheels");
  CHECK(local->pip_args == std::vector<std::string>{"--no-index", "--find-links", "/srv/wheels"});
  CHECK(ParsePackageSource("/srv/wheels")->local_dir == "/srv/wheels");
  CHECK(ParsePackageSource("wheels").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParsePackageSource("ftp://x/").status().code() == absl::StatusCode::kInvalidArgument);

  // A local source never needs the network.
  for (const char* mode : {"names", "any"}) {
    for (bool internet : {false, true}) CHECK(*InstallNetwork(*local, mode, internet) == false);
  }
  // A remote one under names: pip's own code only (wheels only), so the install has it.
  CHECK(*InstallNetwork(*remote, "names", false) == true);
  // Under any, a source build would get it: only for a task that has internet anyway.
  CHECK(*InstallNetwork(*remote, "any", true) == true);
  absl::StatusOr<bool> refused = InstallNetwork(*remote, "any", false);
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("internet_required"));

  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  CHECK(has(PipInstallOptions(*local, "names"), "--only-binary=:all:"));
  CHECK(!has(PipInstallOptions(*local, "names"), "--prefer-binary"));
  CHECK(has(PipInstallOptions(*local, "any"), "--prefer-binary"));
  CHECK(has(PipInstallOptions(*local, "any"), "--no-cache-dir"));
  CHECK(has(PipInstallOptions(*local, "any"), "--find-links"));
}

}  // namespace rc::worker
