#include "coordinator/core/task_validation.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/json_view.h"
#include "common/status_macros.h"
#include "common/task_spec_json.h"
#include "coordinator/core/js_payload.h"
#include "nlohmann/json.hpp"

namespace rc::coordinator {
namespace {

namespace pb = ::retire_cluster::v1;

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

absl::Status ValidateName(absl::string_view field, absl::string_view value, size_t max_len) {
  if (value.size() > max_len) return Bad(field, absl::StrCat("longer than ", max_len, " characters"));
  for (char c : value) {
    if (!IsNameChar(c)) {
      return Bad(field, absl::StrCat("'", value, "' may only hold letters, digits, '_', '-' and '.'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRequirements(const pb::Requirements& r, const TaskLimits& limits) {
  // The ranges and words of the JSON reader (common/task_spec_json.h), so that gRPC and
  // HTTP refuse the same value with the same message.
  if (r.min_cpu_cores() < kMinCpuCoresRange.min) {
    return Bad("requirements.min_cpu_cores",
               absl::StrCat("must be ", kMinCpuCoresRange.min, "..", kMinCpuCoresRange.max, ", got ", r.min_cpu_cores()));
  }
  if (!(r.min_memory_gb() >= 0) || !std::isfinite(r.min_memory_gb())) {
    return Bad("requirements.min_memory_gb", "must be a number >= 0");
  }
  if (!(r.min_storage_gb() >= 0) || !std::isfinite(r.min_storage_gb())) {
    return Bad("requirements.min_storage_gb", "must be a number >= 0");
  }
  const std::string& p = r.required_platform();
  if (!p.empty() && p != "linux" && p != "windows" && p != "darwin" && p != "android") {
    return Bad("requirements.required_platform",
               absl::StrCat("unknown platform '", p, "' (linux, windows, darwin or android)"));
  }
  RETURN_IF_ERROR(ValidateName("requirements.required_role", r.required_role(), 64));
  if (r.required_tags_size() > limits.max_required_tags) {
    return Bad("requirements.required_tags", absl::StrCat(r.required_tags_size(), " tags, over the limit of ",
                                                          limits.max_required_tags));
  }
  for (const std::string& tag : r.required_tags()) {
    if (tag.empty()) return Bad("requirements.required_tags", "a tag must not be empty");
    RETURN_IF_ERROR(ValidateName("requirements.required_tags", tag, 64));
  }
  RETURN_IF_ERROR(ValidateName("requirements.target_device_id", r.target_device_id(), 128));
  if (r.has_timeout_seconds() &&
      (!(r.timeout_seconds() > 0) || !std::isfinite(r.timeout_seconds()))) {
    return Bad("requirements.timeout_seconds",
               absl::StrCat("must be greater than 0, got ", r.timeout_seconds()));
  }
  if (r.has_timeout_seconds() && r.timeout_seconds() > 30 * 24 * 3600) {
    return Bad("requirements.timeout_seconds", "must be at most 30 days");
  }
  if (r.has_max_retries() && (r.max_retries() < kMaxRetriesRange.min || r.max_retries() > kMaxRetriesRange.max)) {
    return Bad("requirements.max_retries",
               absl::StrCat("must be ", kMaxRetriesRange.min, "..", kMaxRetriesRange.max, ", got ", r.max_retries()));
  }
  return absl::OkStatus();
}

absl::Status ValidateDependencies(pb::TaskSpec* spec, const TaskLimits& limits) {
  if (spec->after_size() > limits.max_dependencies) {
    return Bad("after", absl::StrCat(spec->after_size(), " dependencies, over the limit of ", limits.max_dependencies));
  }
  for (int k = 0; k < spec->after_size(); ++k) {
    pb::Dependency* d = spec->mutable_after(k);
    const std::string field = absl::StrCat("after[", k, "]");
    if (d->has_after_index() == !d->task_id().empty()) {
      return Bad(field, "needs exactly one of task_id and after_index");
    }
    if (d->has_after_index() && d->after_index() < 0) {
      return Bad(field + ".after_index", absl::StrCat("must be 0 or more, got ", d->after_index()));
    }
    if (!d->has_after_index()) RETURN_IF_ERROR(ValidateName(field + ".task_id", d->task_id(), 128));
    if (!pb::DependencyCondition_IsValid(d->condition())) {
      return Bad(field + ".condition", absl::StrCat("unknown value ", static_cast<int>(d->condition())));
    }
    if (d->condition() == pb::DEPENDENCY_CONDITION_UNSPECIFIED) d->set_condition(pb::DEPENDENCY_CONDITION_OK);
  }
  if (!pb::ParentClose_IsValid(spec->parent_close())) {
    return Bad("parent_close", absl::StrCat("unknown value ", static_cast<int>(spec->parent_close())));
  }
  return absl::OkStatus();
}

// Whether a task of `type` with this (valid JSON object) payload asks for a browser: the
// `browser` block of python_script, node_task and command (DESIGN.md "Browser
// automation"). The worker checks the block itself; here it only routes the task.
bool AsksForBrowser(const std::string& type, const std::string& payload) {
  if (type != "python_script" && type != "node_task" && type != "command") return false;
  if (payload.find("\"browser\"") == std::string::npos) return false;  // the common case, unparsed
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("browser") && !j["browser"].is_null();
}

}  // namespace

absl::Status ValidateAndNormalize(pb::TaskSpec* spec, const TaskLimits& limits) {
  if (spec->task_type().empty()) return Bad("task_type", "must not be empty");
  RETURN_IF_ERROR(ValidateName("task_type", spec->task_type(), 64));
  // Sizes first: a huge payload is refused before anything parses it.
  if (spec->payload().size() > limits.max_payload_bytes) {
    return Bad("payload", absl::StrCat(spec->payload().size(), " bytes, over the limit of ", limits.max_payload_bytes,
                                       " (max_payload_bytes)"));
  }
  size_t metadata_bytes = 0;
  for (const auto& [key, value] : spec->metadata()) metadata_bytes += key.size() + value.size();
  if (metadata_bytes > limits.max_metadata_bytes) {
    return Bad("metadata", absl::StrCat(metadata_bytes, " bytes of keys and values, over the limit of ",
                                        limits.max_metadata_bytes, " (max_metadata_bytes)"));
  }
  RETURN_IF_ERROR(ValidateJsonObject(spec->payload(), "payload"));
  // A js payload reaches the core as code, or resolved by the client API (js_payload.h).
  if (spec->task_type() == kJsTaskType) RETURN_IF_ERROR(CheckStoredJsPayload(spec->payload()));
  if (!pb::Priority_IsValid(spec->priority())) {
    return Bad("priority", absl::StrCat("unknown value ", static_cast<int>(spec->priority())));
  }
  RETURN_IF_ERROR(ValidateRequirements(spec->requirements(), limits));
  if (spec->idempotency_key().size() > 256) return Bad("idempotency_key", "longer than 256 bytes");
  RETURN_IF_ERROR(ValidateDependencies(spec, limits));
  if (spec->priority() == pb::PRIORITY_UNSPECIFIED) spec->set_priority(pb::PRIORITY_NORMAL);
  if (AsksForBrowser(spec->task_type(), spec->payload())) spec->mutable_requirements()->set_browser_required(true);
  if (spec->payload().find_first_not_of(" \t\r\n") == std::string::npos) spec->set_payload("{}");
  return absl::OkStatus();
}

}  // namespace rc::coordinator
