#include "common/ids.h"

#include <algorithm>
#include <random>

#include "absl/strings/numbers.h"
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

SortableIds::SortableIds() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  gen_.seed(seq);
}

namespace {
constexpr int kSeqBits = 23;
}  // namespace

std::string SortableIds::Next(absl::string_view prefix, int64_t now_ms) {
  const uint64_t base = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)) << kSeqBits;
  if (base > last_) {
    // A new millisecond: start anywhere in the lower half, leaving room to count up.
    last_ = base | (gen_() & ((uint64_t{1} << (kSeqBits - 1)) - 1));
  } else {
    ++last_;  // same (or an earlier) millisecond: count on; a full one spills into the next
  }
  return absl::StrFormat("%s-%016x", prefix, last_);
}

void SortableIds::After(absl::string_view id, int64_t now_ms) {
  const size_t dash = id.rfind('-');
  uint64_t v = 0;
  if (dash == absl::string_view::npos || id.size() - dash - 1 != 16) return;
  if (!absl::SimpleHexAtoi(id.substr(dash + 1), &v)) return;
  if (static_cast<int64_t>(v >> kSeqBits) > now_ms + 24 * 3600 * 1000) return;
  last_ = std::max(last_, v);
}

}  // namespace rc
