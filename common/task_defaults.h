#pragma once
// A task's defaults, in one place: what an unset requirement means wherever it is read
// (dispatch, retries, JSON views, CLI help). A spec keeps "unset" as unset (has_*), so a
// changed default applies to stored tasks too.

#include "retire_cluster/v1/task.pb.h"

namespace rc {

inline constexpr double kDefaultTimeoutSeconds = 300;
inline constexpr int kDefaultMaxRetries = 3;

inline double TimeoutSeconds(const ::retire_cluster::v1::Requirements& r) {
  return r.has_timeout_seconds() ? r.timeout_seconds() : kDefaultTimeoutSeconds;
}
inline int MaxRetries(const ::retire_cluster::v1::Requirements& r) {
  return r.has_max_retries() ? r.max_retries() : kDefaultMaxRetries;
}

}  // namespace rc
