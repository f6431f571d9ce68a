#include "coordinator/http/prometheus_text.h"

#include "absl/strings/str_cat.h"
#include "common/task_names.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

std::string PrometheusLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string PrometheusText(const pb::Stats& s, const std::vector<pb::Worker>& workers) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  };
  metric("retire_cluster_tasks", "gauge", "Tasks known to the coordinator, by status.");
  for (const auto& [status, n] : s.tasks()) {
    absl::StrAppend(&out, "retire_cluster_tasks{status=\"", PrometheusLabelValue(status), "\"} ", n, "\n");
  }
  metric("retire_cluster_queue_depth", "gauge", "Queued tasks, by priority.");
  for (const auto& [p, n] : s.queued_by_priority()) {
    absl::StrAppend(&out, "retire_cluster_queue_depth{priority=\"", PrometheusLabelValue(p), "\"} ", n, "\n");
  }
  metric("retire_cluster_tasks_scheduled_total", "counter", "Attempts placed on workers since start.");
  absl::StrAppend(&out, "retire_cluster_tasks_scheduled_total ", s.tasks_scheduled(), "\n");
  metric("retire_cluster_workers_online", "gauge", "Workers connected and accepting tasks.");
  absl::StrAppend(&out, "retire_cluster_workers_online ", s.online_devices(), "\n");
  // Not *_total: that suffix is for counters, and this one falls when workers are pruned.
  metric("retire_cluster_workers_known", "gauge", "Workers ever seen.");
  absl::StrAppend(&out, "retire_cluster_workers_known ", s.total_devices(), "\n");
  metric("retire_cluster_slots", "gauge", "Task slots of online workers.");
  absl::StrAppend(&out, "retire_cluster_slots ", s.total_slots(), "\n");
  metric("retire_cluster_slots_busy", "gauge", "Slots holding an attempt.");
  absl::StrAppend(&out, "retire_cluster_slots_busy ", s.busy_slots(), "\n");
  metric("retire_cluster_worker_running", "gauge", "Attempts held by each worker.");
  for (const pb::Worker& w : workers) {
    absl::StrAppend(&out, "retire_cluster_worker_running{device_id=\"",
                    PrometheusLabelValue(w.capabilities().device_id()), "\",status=\"",
                    PrometheusLabelValue(WorkerStatusName(w.status())), "\"} ", w.running(), "\n");
  }
  metric("retire_cluster_uptime_seconds", "gauge", "Seconds since the coordinator started.");
  absl::StrAppend(&out, "retire_cluster_uptime_seconds ", s.uptime_seconds(), "\n");
  return out;
}

std::string TasksByTypeText(const std::map<std::string, std::map<std::string, int64_t>>& counts) {
  std::string out =
      "# HELP retire_cluster_tasks_by_type Tasks known to the coordinator, by type and status.\n"
      "# TYPE retire_cluster_tasks_by_type gauge\n";
  for (const auto& [type, by_status] : counts) {
    for (const auto& [status, n] : by_status) {
      absl::StrAppend(&out, "retire_cluster_tasks_by_type{type=\"", PrometheusLabelValue(type), "\",status=\"",
                      PrometheusLabelValue(status), "\"} ", n, "\n");
    }
  }
  return out;
}

}  // namespace rc::coordinator
