#pragma once
// The coordinator's /metrics in the Prometheus text exposition format (version 0.0.4).
// Label values come from clients and workers (device ids, task types), so every one is
// escaped: a value can never end its label, its line or start another series.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "retire_cluster/v1/client_service.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::coordinator {

// `value` as a label value goes between double quotes: backslash, double quote and
// newline escaped as \\, \" and \n (the format's only escapes). Bytes that are not
// UTF-8 pass unchanged (the format reads label values as UTF-8; we do not repair them).
std::string PrometheusLabelValue(absl::string_view value);

// Cluster state: tasks by status, queue depth, workers, slots, per-worker attempts.
std::string PrometheusText(const ::retire_cluster::v1::Stats& stats,
                           const std::vector<::retire_cluster::v1::Worker>& workers);

// retire_cluster_tasks_by_type{type, status} from Coordinator::CountsByType().
std::string TasksByTypeText(const std::map<std::string, std::map<std::string, int64_t>>& counts);

}  // namespace rc::coordinator
