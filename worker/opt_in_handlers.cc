#include "worker/opt_in_handlers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rc::worker {

std::vector<std::string> OptInTypes() { return {"command"}; }

absl::Status AddOptInHandlers(const WorkerConfig& config, HandlerRegistry* registry) {
  const ExecutionOptions options = ExecutionOptions::FromConfig(config);
  for (const std::string& type : config.allow) {
    if (registry->Find(type) != nullptr) continue;  // a safe built-in: always on
    if (type == "command") {
      registry->Add(type, MakeCommandHandler(options));
      continue;
    }
    std::vector<std::string> known = OptInTypes();
    return absl::InvalidArgumentError(absl::StrCat("allow: task type '", type,
                                                   "' is not available on this worker (opt-in types: ",
                                                   absl::StrJoin(known, ", "), ")"));
  }
  return absl::OkStatus();
}

}  // namespace rc::worker
