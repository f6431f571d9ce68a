#pragma once
// The `retire-cluster` and `retire-cluster-status` command lines, as functions so that
// tests run them in-process. Exit codes (README "Exit codes"):
//   0 ok (with --wait / wait: the task ended success)
//   1 the task ended failed, cancelled or timeout; or another error
//   2 bad usage or invalid input (the message names the flag or field)
//   3 unknown task or device id
//   4 coordinator unreachable
//   5 wait timed out

#include <iosfwd>
#include <string>
#include <vector>

namespace rc::client {

constexpr int kExitOk = 0;
constexpr int kExitTaskFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitUnavailable = 4;
constexpr int kExitTimeout = 5;
constexpr int kExitDenied = 6;  // UNAUTHENTICATED or PERMISSION_DENIED

// args[0] is the program name.
int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);
int RunStatusCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace rc::client
