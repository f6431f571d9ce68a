#pragma once
// Identifiers: random ones, and time-ordered ones for tasks.

#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/string_view.h"

namespace rc {

// "<prefix>-" followed by 16 lower-case hex digits from a process-wide CSPRNG-seeded
// generator. Thread-safe.
std::string NewId(absl::string_view prefix);

// Ids that sort by creation time, same shape as NewId: the 16 hex digits hold the
// milliseconds since the epoch in the high 41 bits and, in the low 23, a sequence that
// starts at a random value each millisecond. Time order keeps the task store's inserts
// and updates on the few newest pages of its B-tree; random ids dirtied one random page
// per write. Not thread-safe: one owner, under its own lock.
class SortableIds {
 public:
  SortableIds();
  // Strictly increasing even when `now_ms` stands still or goes back.
  std::string Next(absl::string_view prefix, int64_t now_ms);
  // Later ids sort after `id` (one this or an earlier run made), so that a clock set
  // back across a restart cannot repeat a stored id. Ignores ids of another shape and
  // ids more than a day ahead of `now_ms` (random ones from before ids were sortable).
  void After(absl::string_view id, int64_t now_ms);

 private:
  std::mt19937_64 gen_;
  uint64_t last_ = 0;
};

}  // namespace rc
