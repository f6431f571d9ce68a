#pragma once
// Process-level helpers shared by the thin mains: logging setup and shutdown signals.

#include <string>

namespace rc {

// Sets spdlog's default logger (stderr, with timestamps) to `level`.
void SetupLogging(const std::string& level);

// Blocks SIGINT and SIGTERM in the calling thread (call first in main, before any thread
// starts, so every thread inherits the mask), then later WaitForShutdownSignal() returns
// the signal number once one arrives.
void BlockShutdownSignals();
int WaitForShutdownSignal();

}  // namespace rc
