#pragma once
// RETURN_IF_ERROR / ASSIGN_OR_RETURN, which Debian's Abseil (20220623) does not ship.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RC_CONCAT_INNER(a, b) a##b
#define RC_CONCAT(a, b) RC_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status rc_status_ = (expr);          \
    if (!rc_status_.ok()) return rc_status_;     \
  } while (0)

#define RC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  RC_ASSIGN_OR_RETURN_IMPL(RC_CONCAT(rc_statusor_, __LINE__), lhs, expr)
