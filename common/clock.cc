#include "common/clock.h"

#include <string>

namespace rc {

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();
  return clock;
}

std::string FormatTimeMs(int64_t unix_ms) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

}  // namespace rc
