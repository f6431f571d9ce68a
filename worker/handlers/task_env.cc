#include "worker/handlers/task_env.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rc::worker {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxEnvNameLength) return false;
  if (absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

template <size_t N>
bool OneOf(absl::string_view name, const absl::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

template <size_t N>
bool StartsWithAny(absl::string_view name, const absl::string_view (&prefixes)[N]) {
  return std::any_of(std::begin(prefixes), std::end(prefixes),
                     [&](absl::string_view p) { return absl::StartsWith(name, p); });
}

constexpr absl::string_view kReserved[] = {"PATH", "HOME", "TMPDIR"};
constexpr absl::string_view kReservedPrefixes[] = {"RETIRE_CLUSTER_", "RC_"};

// glibc's loader reads LD_* (preload, audit, library path, debug output files) and
// GLIBC_TUNABLES before main; MALLOC_TRACE makes mtrace() write a file.
constexpr absl::string_view kLoader[] = {"GLIBC_TUNABLES", "MALLOC_TRACE"};
constexpr absl::string_view kLoaderPrefixes[] = {"LD_"};

// Paths from which libc, iconv and gettext load modules or data files; the resolver's
// HOSTALIASES and RESOLV_HOST_CONF make it read a file the task names.
constexpr absl::string_view kLocale[] = {"GCONV_PATH",    "LOCPATH", "NLSPATH",     "I18NPATH",        "CHARSETALIASDIR",
                                         "TEXTDOMAINDIR", "TZDIR",   "HOSTALIASES", "RESOLV_HOST_CONF"};

// Variables from which libraries and runtimes load modules, plugins or configuration
// that names them: OpenSSL (a config can load an engine or provider), GIO, GTK, Cyrus
// SASL, the JVM's class path, .NET start-up hooks and profilers (CORECLR_*), git's
// commands and config (GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*: core.sshCommand,
// core.fsmonitor, ... run programs), less's input filters.
constexpr absl::string_view kModuleLoading[] = {
    "OPENSSL_CONF", "OPENSSL_MODULES",      "OPENSSL_ENGINES", "GIO_MODULE_DIR", "GIO_EXTRA_MODULES",
    "GTK_MODULES",  "GTK3_MODULES",         "GTK_PATH",        "GTK_EXE_PREFIX", "SASL_PATH",
    "CLASSPATH",    "DOTNET_STARTUP_HOOKS", "LESSOPEN",        "LESSCLOSE"};
constexpr absl::string_view kModuleLoadingPrefixes[] = {"CORECLR_", "DOTNET_ADDITIONAL_DEPS", "GIT_"};

// Variables that make an interpreter or shell run code, or load it from elsewhere,
// before (or instead of) what argv names.
constexpr absl::string_view kStartupHooks[] = {
    "PERL5OPT",    "PERL5LIB",         "PERLLIB",        "PERL5DB",          "RUBYOPT",
    "RUBYLIB",     "NODE_OPTIONS",     "NODE_PATH",      "NODE_REPL_EXTERNAL_MODULE",
    "BASH_ENV",    "ENV",              "SHELLOPTS",      "BASHOPTS",         "PS4",
    "PROMPT_COMMAND", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "LUA_INIT",
    "LUA_PATH",    "LUA_CPATH",        "TCLLIBPATH"};
constexpr absl::string_view kStartupHookPrefixes[] = {"BASH_FUNC_", "PYTHON", "LUA_INIT_"};
// PYTHON* is refused as a family (PYTHONSTARTUP, PYTHONPATH, PYTHONHOME, PYTHONUSERBASE,
// PYTHONWARNINGS and PYTHONBREAKPOINT all import code) except these, which only tune.
constexpr absl::string_view kHarmlessPython[] = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
                                                 "PYTHONIOENCODING", "PYTHONUTF8",              "PYTHONFAULTHANDLER",
                                                 "PYTHONOPTIMIZE",   "PYTHONNOUSERSITE",        "PYTHONSAFEPATH"};

}  // namespace

EnvFamily ClassifyTaskVariable(absl::string_view name) {
  if (!ValidName(name)) return EnvFamily::kMalformed;
  if (OneOf(name, kReserved) || StartsWithAny(name, kReservedPrefixes)) return EnvFamily::kReserved;
  if (OneOf(name, kLoader) || StartsWithAny(name, kLoaderPrefixes)) return EnvFamily::kLoader;
  if (OneOf(name, kLocale)) return EnvFamily::kLocale;
  if (OneOf(name, kModuleLoading) || StartsWithAny(name, kModuleLoadingPrefixes)) return EnvFamily::kModuleLoading;
  if (OneOf(name, kStartupHooks) || (StartsWithAny(name, kStartupHookPrefixes) && !OneOf(name, kHarmlessPython))) {
    return EnvFamily::kStartupHook;
  }
  return EnvFamily::kAllowed;
}

const char* EnvFamilyName(EnvFamily family) {
  switch (family) {
    case EnvFamily::kAllowed:
      return "allowed";
    case EnvFamily::kMalformed:
      return "not a variable name ([A-Za-z_][A-Za-z0-9_]*, at most 128 characters)";
    case EnvFamily::kReserved:
      return "reserved, set by the worker (PATH, HOME, TMPDIR, RETIRE_CLUSTER_*, RC_*)";
    case EnvFamily::kLoader:
      return "a loader variable (LD_*, GLIBC_TUNABLES, MALLOC_TRACE)";
    case EnvFamily::kLocale:
      return "a locale/iconv variable (GCONV_PATH, LOCPATH, NLSPATH, I18NPATH, CHARSETALIASDIR, TEXTDOMAINDIR, TZDIR) "
             "or a resolver file (HOSTALIASES, RESOLV_HOST_CONF)";
    case EnvFamily::kModuleLoading:
      return "a library/module loading variable (OPENSSL_CONF, OPENSSL_MODULES, OPENSSL_ENGINES, GIO_MODULE_DIR, "
             "GTK_MODULES, GTK_PATH, SASL_PATH, CLASSPATH, DOTNET_STARTUP_HOOKS, CORECLR_*, GIT_*, LESSOPEN, ...)";
    case EnvFamily::kStartupHook:
      return "an interpreter start-up hook (PYTHON* but PYTHONUNBUFFERED and the like, PERL5OPT, PERL5LIB, RUBYOPT, "
             "NODE_OPTIONS, NODE_PATH, BASH_ENV, ENV, SHELLOPTS, PS4, JAVA_TOOL_OPTIONS, LUA_INIT, ...)";
  }
  return "unknown";
}

absl::Status CheckTaskEnv(const std::map<std::string, std::string>& env, absl::string_view field) {
  for (const auto& [name, value] : env) {
    const EnvFamily family = ClassifyTaskVariable(name);
    if (family != EnvFamily::kAllowed) {
      // A malformed name is not quoted raw into the message: it may hold anything.
      const std::string shown = family == EnvFamily::kMalformed ? absl::StrCat("[\"", absl::CEscape(name.substr(0, 64)), "\"]")
                                                                 : absl::StrCat(".", name);
      return absl::InvalidArgumentError(absl::StrCat(field, shown, ": refused, ", EnvFamilyName(family),
                                                     "; a task sets only its own variables"));
    }
    if (value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": refused, the value holds a NUL byte"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> HostEnvironment(const std::string& dir) {
  return {"PATH=/usr/local/bin:/usr/bin:/bin", absl::StrCat("HOME=", dir), absl::StrCat("TMPDIR=", dir),
          "LANG=C.UTF-8"};
}

}  // namespace rc::worker
