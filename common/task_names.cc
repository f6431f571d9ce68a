#include "common/task_names.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rc {
namespace {

constexpr std::array<std::pair<pb::Priority, absl::string_view>, 4> kPriorities = {{
    {pb::PRIORITY_LOW, "low"},
    {pb::PRIORITY_NORMAL, "normal"},
    {pb::PRIORITY_HIGH, "high"},
    {pb::PRIORITY_URGENT, "urgent"},
}};

constexpr std::array<std::pair<pb::TaskStatus, absl::string_view>, 8> kStatuses = {{
    {pb::TASK_STATUS_PENDING, "pending"},
    {pb::TASK_STATUS_QUEUED, "queued"},
    {pb::TASK_STATUS_ASSIGNED, "assigned"},
    {pb::TASK_STATUS_RUNNING, "running"},
    {pb::TASK_STATUS_SUCCESS, "success"},
    {pb::TASK_STATUS_FAILED, "failed"},
    {pb::TASK_STATUS_CANCELLED, "cancelled"},
    {pb::TASK_STATUS_TIMEOUT, "timeout"},
}};

}  // namespace

absl::string_view PriorityName(pb::Priority p) {
  for (const auto& [v, name] : kPriorities) {
    if (v == p) return name;
  }
  return "normal";
}

absl::StatusOr<pb::Priority> ParsePriority(absl::string_view name) {
  for (const auto& [v, n] : kPriorities) {
    if (n == name) return v;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown priority '", name, "' (expected low, normal, high or urgent)"));
}

absl::string_view StatusName(pb::TaskStatus s) {
  for (const auto& [v, name] : kStatuses) {
    if (v == s) return name;
  }
  return "unknown";
}

absl::StatusOr<pb::TaskStatus> ParseStatus(absl::string_view name) {
  for (const auto& [v, n] : kStatuses) {
    if (n == name) return v;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown status '", name,
      "' (expected pending, queued, assigned, running, success, failed, cancelled or timeout)"));
}

bool IsTerminal(pb::TaskStatus s) {
  return s == pb::TASK_STATUS_SUCCESS || s == pb::TASK_STATUS_FAILED ||
         s == pb::TASK_STATUS_CANCELLED || s == pb::TASK_STATUS_TIMEOUT;
}

absl::string_view WorkerStatusName(pb::WorkerStatus s) {
  switch (s) {
    case pb::WORKER_STATUS_ONLINE: return "online";
    case pb::WORKER_STATUS_OFFLINE: return "offline";
    case pb::WORKER_STATUS_DRAINING: return "draining";
    default: return "unknown";
  }
}

}  // namespace rc
