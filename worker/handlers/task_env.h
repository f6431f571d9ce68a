#pragma once
// Environments: which variables a task may set (a pure policy), and the one fixed
// environment of every process the worker starts outside a task's sandbox.
//
// Design assumption: the sandbox boundary is the protection. A task's variables are set
// only inside its sandbox (bwrap's --clearenv/--setenv, worker/process/containment.h) or, at the
// `process` tier, only on the task process itself; they never reach bwrap, python -m venv
// or pip, which get HostEnvironment() and nothing of the task's. The name policy below
// is defence in depth only, never the boundary: no list of names can be complete. It
// refuses names that the worker itself sets and names that make programs load or run
// code from elsewhere (the loader, libc's locale/iconv/resolver files, library and module
// loading, interpreter and shell start-up hooks), so that no present or future process
// started with a task's variables runs code the task did not ask for by argv. It refuses
// (INVALID_ARGUMENT, a permanent failure) rather than silently dropping: a task that
// sets LD_PRELOAD learns at once that it did not take effect.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rc::worker {

// Why a variable name is, or is not, the task's to set.
enum class EnvFamily {
  kAllowed,
  kMalformed,     // not [A-Za-z_][A-Za-z0-9_]*, or longer than kMaxEnvNameLength
  kReserved,      // set by the worker: PATH, HOME, TMPDIR, RETIRE_CLUSTER_*, RC_*
  kLoader,        // the dynamic loader and libc start-up: LD_*, GLIBC_TUNABLES, MALLOC_*
  kLocale,        // code or data loaded by libc's locale/iconv/gettext/resolver: GCONV_PATH, LOCPATH, HOSTALIASES, ...
  kModuleLoading, // libraries' module and plugin loading: OPENSSL_CONF, GTK_MODULES, CLASSPATH, GIT_*, ...
  kStartupHook,   // interpreter and shell start-up hooks: PYTHONSTARTUP, PERL5OPT, NODE_OPTIONS, BASH_ENV, ...
};

constexpr size_t kMaxEnvNameLength = 128;

// The family of `name` (the first that applies, in the order above). Pure.
EnvFamily ClassifyTaskVariable(absl::string_view name);

// A short description of a refused family, for error messages ("a loader variable").
const char* EnvFamilyName(EnvFamily family);

// OK when every variable of `env` is the task's to set and no value holds a NUL byte;
// otherwise INVALID_ARGUMENT naming the first refused variable and its family, e.g.
// "payload.env.LD_PRELOAD: refused, a loader variable (LD_*, GLIBC_TUNABLES, MALLOC_*) ...".
// `field` prefixes the message ("payload.env").
absl::Status CheckTaskEnv(const std::map<std::string, std::string>& env, absl::string_view field);

// The fixed, clean environment of every process the worker starts outside a task's
// sandbox (bwrap itself, for tasks and for dependency installs): PATH, HOME and TMPDIR
// (`dir`), LANG=C.UTF-8. Nothing from the worker's own environment or a task's. (The
// processes inside a sandbox get TaskEnvironment(), worker/process/task_process.h.)
std::vector<std::string> HostEnvironment(const std::string& dir);

}  // namespace rc::worker
