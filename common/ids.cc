#include "common/ids.h"

#include <random>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace rc {

std::string NewId(absl::string_view prefix) {
  static absl::Mutex mu;
  static std::mt19937_64* gen ABSL_GUARDED_BY(mu) = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return new std::mt19937_64(seq);
  }();
  uint64_t v;
  {
    absl::MutexLock lock(&mu);
    v = (*gen)();
  }
  return absl::StrFormat("%s-%016x", prefix, v);
}

}  // namespace rc
