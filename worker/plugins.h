#pragma once
// Plugins from --plugin-dir, both kinds:
//  - shared libraries (*.so) speaking the C ABI of worker/plugin_abi.h; each registers
//    one or more task types; a different ABI version is refused with a log line;
//  - executables named for their task type: the payload JSON on stdin, the result JSON
//    on stdout, exit code 0 = success; run through the process runner.
// Found plugins become handlers only for types the worker allows (--allow).

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/handler.h"
#include "worker/process/task_process.h"

namespace rc::worker {

struct PluginScan {
  // Task type -> handler, for every plugin found and loadable.
  std::map<std::string, std::unique_ptr<Handler>> handlers;
  std::vector<std::string> refused;  // one line per file that could not be used, and why
};

// UNAVAILABLE naming the directory when it cannot be read.
absl::StatusOr<PluginScan> ScanPlugins(const std::string& dir, const ExecutionOptions& options);

}  // namespace rc::worker
