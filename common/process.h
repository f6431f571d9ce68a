#pragma once
// Process-level helpers shared by the thin mains: logging setup and shutdown signals.

#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/flags.h"

namespace rc {

// Sets spdlog's default logger (stderr) to `level`. `format` "json" writes one JSON
// object per line ({"time", "level", "msg"}, UTC) for log shippers; "text" is for people.
void SetupLogging(const std::string& level, const std::string& format = "text");

// Debian builds absl without NDEBUG, so every Mutex lock also updates a lock-order
// graph for deadlock detection: a few percent of a busy coordinator's CPU. The test
// binaries keep the checks; the daemons and benchmarks call this first thing in main.
void DisableMutexDeadlockDetection();

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, before any thread
// starts, so every thread inherits the mask), then later WaitForShutdownSignal() returns
// the signal number once one arrives.
void BlockShutdownSignals();
int WaitForShutdownSignal();
// Like WaitForShutdownSignal, but returns 0 when `timeout` passes first.
int WaitForShutdownSignalFor(absl::Duration timeout);

// Parses a daemon's command line: `specs` plus --config, --help and --version, no
// positional arguments. Returns the flags, or the exit code when the process should end
// now (help or version printed: 0; an error printed to stderr naming the flag: 2).
std::variant<ParsedFlags, int> ParseDaemonFlags(const std::string& name, const std::string& usage,
                                                std::vector<FlagSpec> specs, int argc, char** argv);

}  // namespace rc
