#include "common/json_view.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/task_defaults.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"

namespace rc {
namespace {

using json = Json;

json TimeOrNull(int64_t ms) { return ms == 0 ? json(nullptr) : json(FormatTimeMs(ms)); }

// How deep arrays and objects nest in `text` (valid JSON), without building it.
int NestingDepth(absl::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

absl::Status TooDeep(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " nests arrays and objects more than ", kMaxJsonDepth, " levels deep"));
}

// DESIGN.md "Workflows": the spec's dependencies and parent_close, the task's place in
// its tree. Omitted when empty (a top-level task without dependencies shows only its
// depth, 0). attempt_token_sha256 is internal and never shown.
void AddWorkflowFields(const pb::Task& t, json* j) {
  const pb::TaskSpec& s = t.spec();
  if (s.after_size() > 0) {
    json after = json::array();
    for (const pb::Dependency& d : s.after()) {
      json one = json::object();
      if (d.has_after_index()) {
        one["after_index"] = d.after_index();
      } else {
        one["task_id"] = d.task_id();
      }
      one["condition"] = DependencyConditionName(d.condition());
      after.push_back(std::move(one));
    }
    (*j)["after"] = std::move(after);
  }
  if (s.parent_close() != pb::PARENT_CLOSE_UNSPECIFIED) (*j)["parent_close"] = ParentCloseName(s.parent_close());
  if (!t.parent_task_id().empty()) (*j)["parent_task_id"] = t.parent_task_id();
  if (!t.root_task_id().empty()) (*j)["root_task_id"] = t.root_task_id();
  (*j)["depth"] = t.depth();
  if (t.ancestor_task_ids_size() > 0) {
    (*j)["ancestor_task_ids"] = json(std::vector<std::string>(t.ancestor_task_ids().begin(), t.ancestor_task_ids().end()));
  }
  if (t.waiting_for_size() > 0) {
    (*j)["waiting_for"] = json(std::vector<std::string>(t.waiting_for().begin(), t.waiting_for().end()));
  }
}

}  // namespace

json ParseOrString(absl::string_view text) {
  if (text.empty()) return json::object();
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || NestingDepth(text) > kMaxJsonDepth) return json(std::string(text));
  return parsed;
}

absl::Status CheckJsonDepth(const nlohmann::json& j, absl::string_view what) {
  std::vector<std::pair<const nlohmann::json*, int>> todo = {{&j, 1}};
  while (!todo.empty()) {
    auto [value, depth] = todo.back();
    todo.pop_back();
    if (!value->is_structured()) continue;
    if (depth > kMaxJsonDepth) return TooDeep(what);
    for (const nlohmann::json& child : *value) todo.push_back({&child, depth + 1});
  }
  return absl::OkStatus();
}

absl::Status ValidateJsonObject(absl::string_view text, absl::string_view what) {
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i == absl::string_view::npos) return absl::OkStatus();  // empty means {}
  if (text[i] != '{') {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be a JSON object"));
  }
  try {
    [[maybe_unused]] json parsed = json::parse(text);  // exceptions carry position and reason
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", e.what()));
  }
  if (NestingDepth(text) > kMaxJsonDepth) return TooDeep(what);
  return absl::OkStatus();
}

json RequirementsToJson(const pb::Requirements& r) {
  json j = {
      {"min_cpu_cores", r.min_cpu_cores()},
      {"min_memory_gb", r.min_memory_gb()},
      {"min_storage_gb", r.min_storage_gb()},
      {"gpu_required", r.gpu_required()},
      {"internet_required", r.internet_required()},
      {"required_platform", r.required_platform()},
      {"required_role", r.required_role()},
      {"required_tags", json::array()},
      {"target_device_id", r.target_device_id()},
      {"timeout_seconds", TimeoutSeconds(r)},
      {"max_retries", MaxRetries(r)},
      {"browser_required", r.browser_required()},
  };
  for (const auto& t : r.required_tags()) j["required_tags"].push_back(t);
  return j;
}

json TaskToJson(const pb::Task& t) {
  const pb::TaskSpec& s = t.spec();
  json metadata = json::object();
  for (const auto& [k, v] : s.metadata()) metadata[k] = v;
  json history = json::array();
  for (const pb::Attempt& a : t.attempt_history()) {
    history.push_back({{"attempt", a.number()},
                       {"worker_device_id", a.worker_device_id()},
                       {"assigned_at", TimeOrNull(a.assigned_at_ms())},
                       {"started_at", TimeOrNull(a.started_at_ms())},
                       {"finished_at", TimeOrNull(a.finished_at_ms())},
                       {"status", StatusName(a.status())},
                       {"error_message", a.error_message()}});
  }
  json j = {
      {"task_id", t.task_id()},
      {"task_type", s.task_type()},
      {"payload", ParseOrString(s.payload())},
      {"priority", PriorityName(s.priority())},
      {"requirements", RequirementsToJson(s.requirements())},
      {"metadata", metadata},
      {"idempotency_key", s.idempotency_key()},
      {"owner", t.owner()},
      {"status", StatusName(t.status())},
      {"result", t.result().empty() ? json(nullptr) : ParseOrString(t.result())},
      {"error_message", t.error_message()},
      {"stdout", t.stdout()},
      {"stderr", t.stderr()},
      {"exit_code", t.exit_code()},
      {"execution_time_seconds", t.execution_time_seconds()},
      {"worker_device_id", t.worker_device_id()},
      {"attempts", t.attempts()},
      {"created_at", TimeOrNull(t.created_at_ms())},
      {"started_at", TimeOrNull(t.started_at_ms())},
      {"finished_at", TimeOrNull(t.finished_at_ms())},
      {"unschedulable_reason", t.unschedulable_reason()},
      {"attempt_history", history},
      // While it runs: the latest sample of its processes (cpu_percent of one core,
      // memory_bytes resident, sampled_at); once ended: totals, sampled_at null.
      {"resource_usage",
       {{"cpu_seconds", t.resource_usage().cpu_seconds()},
        {"peak_rss_bytes", t.resource_usage().peak_rss_bytes()},
        {"pid", t.resource_usage().pid()},
        {"cpu_percent", t.resource_usage().cpu_percent()},
        {"memory_bytes", t.resource_usage().memory_bytes()},
        {"sampled_at", TimeOrNull(t.resource_usage().sampled_at_ms())}}},
  };
  AddWorkflowFields(t, &j);
  // The worker's signature over the outcome (retire-cluster verify checks it).
  const pb::ResultSignature& sig = t.signature();
  j["signature"] = !t.has_signature() ? json(nullptr)
                                      : json{{"worker_device_id", sig.worker_device_id()},
                                             {"attempt", sig.attempt()},
                                             {"result_digest", sig.result_digest()},
                                             {"signed_at", TimeOrNull(sig.signed_at_ms())},
                                             {"signature", absl::Base64Escape(sig.signature())},
                                             {"public_key", absl::BytesToHexString(sig.public_key())}};
  // Signed in a batch (issue 18): the signed root and this result's way up to it; a
  // single signature (older records) has none of these.
  if (t.has_signature() && sig.batch_size() > 0) {
    json proof = json::array();
    for (const std::string& h : sig.proof()) proof.push_back(absl::BytesToHexString(h));
    j["signature"]["batch_root"] = absl::BytesToHexString(sig.batch_root());
    j["signature"]["leaf_index"] = sig.leaf_index();
    j["signature"]["batch_size"] = sig.batch_size();
    j["signature"]["proof"] = std::move(proof);
  }
  return j;
}

json WorkerToJson(const pb::Worker& w) {
  const pb::Capabilities& c = w.capabilities();
  json j = {
      {"device_id", c.device_id()},
      {"hostname", c.hostname()},
      {"status", WorkerStatusName(w.status())},
      {"role", c.role()},
      {"platform", c.platform()},
      {"arch", c.arch()},
      {"cpu_cores", c.cpu_cores()},
      {"memory_gb", c.memory_gb()},
      {"storage_gb", c.storage_gb()},
      {"gpu", c.gpu()},
      {"gpu_name", c.gpu_name()},
      {"internet", c.internet()},
      {"tags", json::array()},
      {"task_types", json::array()},
      {"slots", c.slots()},
      {"running", w.running()},
      {"load", w.load()},
      {"load_average", w.load_average()},
      {"last_heartbeat", TimeOrNull(w.last_heartbeat_ms())},
      {"version", c.version()},
      {"public_key", absl::BytesToHexString(c.public_key())},  // signs its results (hex, 32 bytes)
      {"containment", c.containment()},
      {"cgroup_limits", json::array()},
      {"drained", w.drained()},
      {"accepted_submitters", json::array()},
  };
  for (const auto& t : c.tags()) j["tags"].push_back(t);
  for (const auto& t : c.task_types()) j["task_types"].push_back(t);
  for (const auto& l : c.cgroup_limits()) j["cgroup_limits"].push_back(l);
  for (const auto& s : c.accepted_submitters()) j["accepted_submitters"].push_back(s);
  return j;
}

json StatsToJson(const pb::Stats& s) {
  json tasks = json::object();
  for (const auto& [k, v] : s.tasks()) tasks[k] = v;
  json queued = json::object();
  for (const auto& [k, v] : s.queued_by_priority()) queued[k] = v;
  return {
      {"online_devices", s.online_devices()},
      {"total_devices", s.total_devices()},
      {"total_slots", s.total_slots()},
      {"busy_slots", s.busy_slots()},
      {"tasks", tasks},
      {"queued_by_priority", queued},
      {"tasks_scheduled", s.tasks_scheduled()},
      {"tasks_succeeded", s.tasks_succeeded()},
      {"tasks_failed", s.tasks_failed()},
      {"uptime_seconds", s.uptime_seconds()},
  };
}

}  // namespace rc
