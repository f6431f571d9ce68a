#include "client/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/json_view.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"

namespace rc::client {
namespace {

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

void Line(std::string* out, const char* key, const std::string& value) {
  if (value.empty()) return;
  absl::StrAppendFormat(out, "%-22s %s\n", absl::StrCat(key, ":"), value);
}

}  // namespace

std::string FormatUsage(const pb::ResourceUsage& u) {
  constexpr double kMiB = 1024.0 * 1024.0;
  std::vector<std::string> parts;
  if (u.pid() > 0) parts.push_back(absl::StrCat("pid ", u.pid()));
  if (u.sampled_at_ms() > 0) {  // a live sample of the running processes
    parts.push_back(absl::StrFormat("cpu %.1f%%", u.cpu_percent()));
    parts.push_back(absl::StrFormat("memory %.1f MiB", u.memory_bytes() / kMiB));
    parts.push_back(absl::StrFormat("cpu time %.2fs (live)", u.cpu_seconds()));
    return absl::StrJoin(parts, ", ");
  }
  if (u.cpu_seconds() > 0) parts.push_back(absl::StrFormat("cpu time %.2fs", u.cpu_seconds()));
  if (u.peak_rss_bytes() > 0) parts.push_back(absl::StrFormat("peak memory %.1f MiB", u.peak_rss_bytes() / kMiB));
  return absl::StrJoin(parts, ", ");
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatTask(const pb::Task& t) {
  std::string out;
  const pb::TaskSpec& s = t.spec();
  Line(&out, "task_id", t.task_id());
  Line(&out, "task_type", s.task_type());
  Line(&out, "status", std::string(StatusName(t.status())));
  Line(&out, "priority", std::string(PriorityName(s.priority())));
  Line(&out, "unschedulable_reason", t.unschedulable_reason());
  Line(&out, "parent_task_id", t.parent_task_id());
  if (t.depth() > 0) {
    Line(&out, "root_task_id", t.root_task_id());
    Line(&out, "depth", absl::StrCat(t.depth()));
  }
  std::vector<std::string> after;
  for (const pb::Dependency& d : s.after()) {
    after.push_back(absl::StrCat(d.has_after_index() ? absl::StrCat("#", d.after_index()) : d.task_id(), ":",
                                 DependencyConditionName(d.condition())));
  }
  Line(&out, "after", absl::StrJoin(after, " "));
  Line(&out, "waiting_for", absl::StrJoin(t.waiting_for(), " "));
  Line(&out, "worker", t.worker_device_id());
  Line(&out, "attempts", t.attempts() > 0 ? absl::StrCat(t.attempts()) : "");
  Line(&out, "created_at", FormatTimeMs(t.created_at_ms()));
  Line(&out, "started_at", FormatTimeMs(t.started_at_ms()));
  Line(&out, "finished_at", FormatTimeMs(t.finished_at_ms()));
  if (IsTerminal(t.status())) Line(&out, "execution_time", absl::StrFormat("%.3fs", t.execution_time_seconds()));
  Line(&out, "payload", ParseOrString(s.payload()).dump());
  if (!t.result().empty()) Line(&out, "result", ParseOrString(t.result()).dump());
  Line(&out, "error", t.error_message());
  if (t.exit_code() != 0) Line(&out, "exit_code", absl::StrCat(t.exit_code()));
  Line(&out, "usage", FormatUsage(t.resource_usage()));
  if (!t.stdout().empty()) absl::StrAppend(&out, "--- stdout ---\n", t.stdout(), "\n");
  if (!t.stderr().empty()) absl::StrAppend(&out, "--- stderr ---\n", t.stderr(), "\n");
  return out;
}

std::string FormatTaskTable(const std::vector<pb::Task>& tasks) {
  std::vector<std::vector<std::string>> rows = {{"TASK_ID", "TYPE", "PRIORITY", "STATUS", "WORKER", "CREATED"}};
  for (const pb::Task& t : tasks) {
    rows.push_back({t.task_id(), t.spec().task_type(), std::string(PriorityName(t.spec().priority())),
                    std::string(StatusName(t.status())), OrDash(t.worker_device_id()), FormatTimeMs(t.created_at_ms())});
  }
  return FormatTable(rows);
}

std::string FormatWorkerTable(const std::vector<pb::Worker>& workers) {
  std::vector<std::vector<std::string>> rows = {
      {"DEVICE", "STATUS", "ROLE", "PLATFORM", "CORES", "RAM_GB", "DISK_GB", "GPU", "SLOTS", "RUNNING", "TAGS"}};
  for (const pb::Worker& w : workers) {
    const pb::Capabilities& c = w.capabilities();
    rows.push_back({c.device_id(), std::string(WorkerStatusName(w.status())), c.role(),
                    absl::StrCat(c.platform(), "/", c.arch()), absl::StrCat(c.cpu_cores()),
                    absl::StrFormat("%.1f", c.memory_gb()), absl::StrFormat("%.1f", c.storage_gb()),
                    c.gpu() ? "yes" : "no", absl::StrCat(c.slots()), absl::StrCat(w.running()),
                    OrDash(absl::StrJoin(c.tags(), ","))});
  }
  return FormatTable(rows);
}

std::string FormatWorker(const pb::Worker& w) {
  const pb::Capabilities& c = w.capabilities();
  std::string out;
  Line(&out, "device_id", c.device_id());
  Line(&out, "status", std::string(WorkerStatusName(w.status())));
  Line(&out, "hostname", c.hostname());
  Line(&out, "role", c.role());
  Line(&out, "platform", absl::StrCat(c.platform(), "/", c.arch()));
  Line(&out, "cpu_cores", absl::StrCat(c.cpu_cores()));
  Line(&out, "memory_gb", absl::StrFormat("%.2f", c.memory_gb()));
  Line(&out, "storage_gb", absl::StrFormat("%.2f free", c.storage_gb()));
  Line(&out, "gpu", c.gpu() ? c.gpu_name() : "none");
  Line(&out, "internet", c.internet() ? "yes" : "no");
  Line(&out, "tags", absl::StrJoin(c.tags(), ","));
  Line(&out, "task_types", absl::StrJoin(c.task_types(), ","));
  Line(&out, "slots", absl::StrFormat("%d (%d running, load %.2f)", c.slots(), w.running(), w.load()));
  Line(&out, "last_heartbeat", FormatTimeMs(w.last_heartbeat_ms()));
  Line(&out, "version", c.version());
  return out;
}

std::string FormatStats(const pb::Stats& s) {
  std::string out;
  absl::StrAppendFormat(&out, "workers: %d online of %d, slots %d busy of %d\n", s.online_devices(),
                        s.total_devices(), s.busy_slots(), s.total_slots());
  std::vector<std::string> parts;
  for (const char* name : {"queued", "assigned", "running", "success", "failed", "cancelled", "timeout"}) {
    auto it = s.tasks().find(name);
    parts.push_back(absl::StrCat(name, " ", it == s.tasks().end() ? 0 : it->second));
  }
  absl::StrAppend(&out, "tasks: ", absl::StrJoin(parts, ", "), "\n");
  parts.clear();
  for (const char* name : {"urgent", "high", "normal", "low"}) {
    auto it = s.queued_by_priority().find(name);
    parts.push_back(absl::StrCat(name, " ", it == s.queued_by_priority().end() ? 0 : it->second));
  }
  absl::StrAppend(&out, "queued by priority: ", absl::StrJoin(parts, ", "), "\n");
  absl::StrAppendFormat(&out, "scheduled %d, succeeded %d, failed %d, uptime %.0fs\n", s.tasks_scheduled(),
                        s.tasks_succeeded(), s.tasks_failed(), s.uptime_seconds());
  return out;
}

}  // namespace rc::client
