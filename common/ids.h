#pragma once
// Random identifiers for tasks and worker incarnations.

#include <string>
#include "absl/strings/string_view.h"

namespace rc {

// "<prefix>-" followed by 16 lower-case hex digits from a process-wide CSPRNG-seeded
// generator. Thread-safe.
std::string NewId(absl::string_view prefix);

}  // namespace rc
