#include "common/task_spec_json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/json_view.h"
#include "common/status_macros.h"
#include "common/task_names.h"

namespace rc {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status OnlyKnown(const json& j, const std::string& where, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) return Bad(where.empty() ? key : absl::StrCat(where, ".", key), "unknown field");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const json& j, const std::string& field) {
  if (!j.is_string()) return Bad(field, "expected a string");
  return j.get<std::string>();
}

absl::StatusOr<double> Number(const json& j, const std::string& field) {
  if (!j.is_number()) return Bad(field, "expected a number");
  return j.get<double>();
}

// An integer in `range`. nlohmann keeps integers above int64 as uint64 (get<int64_t>
// would wrap them) and ones beyond uint64 as doubles: both are out of range, not truncated.
absl::StatusOr<int64_t> Integer(const json& j, const std::string& field, IntRange range) {
  auto out_of_range = [&] {
    return Bad(field, absl::StrCat("must be ", range.min, "..", range.max, ", got ", j.dump()));
  };
  if (j.is_number_unsigned()) {
    if (j.get<uint64_t>() > static_cast<uint64_t>(range.max)) return out_of_range();
    return static_cast<int64_t>(j.get<uint64_t>());
  }
  if (j.is_number_integer()) {
    const int64_t n = j.get<int64_t>();
    if (n < range.min || n > range.max) return out_of_range();
    return n;
  }
  if (j.is_number_float()) {
    const double x = j.get<double>();
    // A whole number too large for 64 bits (1e30, 18446744073709551616): say the range.
    if (std::isfinite(x) && x == std::floor(x) && (x < -9.2e18 || x > 9.2e18)) return out_of_range();
  }
  return Bad(field, "expected an integer");
}

absl::StatusOr<bool> Bool(const json& j, const std::string& field) {
  if (!j.is_boolean()) return Bad(field, "expected true or false");
  return j.get<bool>();
}

absl::Status Requirements(const json& j, ::retire_cluster::v1::Requirements* r) {
  if (!j.is_object()) return Bad("requirements", "expected an object");
  RETURN_IF_ERROR(OnlyKnown(j, "requirements",
                            {"min_cpu_cores", "min_memory_gb", "min_storage_gb", "gpu_required", "internet_required",
                             "required_platform", "required_role", "required_tags", "target_device_id",
                             "timeout_seconds", "max_retries", "browser_required"}));
  for (const auto& [key, v] : j.items()) {
    if (v.is_null()) continue;
    const std::string f = "requirements." + key;
    if (key == "min_cpu_cores") {
      ASSIGN_OR_RETURN(int64_t n, Integer(v, f, kMinCpuCoresRange));
      r->set_min_cpu_cores(static_cast<int32_t>(n));  // in int32 range: checked above
    } else if (key == "min_memory_gb") {
      ASSIGN_OR_RETURN(double x, Number(v, f));
      r->set_min_memory_gb(x);
    } else if (key == "min_storage_gb") {
      ASSIGN_OR_RETURN(double x, Number(v, f));
      r->set_min_storage_gb(x);
    } else if (key == "gpu_required") {
      ASSIGN_OR_RETURN(bool b, Bool(v, f));
      r->set_gpu_required(b);
    } else if (key == "internet_required") {
      ASSIGN_OR_RETURN(bool b, Bool(v, f));
      r->set_internet_required(b);
    } else if (key == "browser_required") {
      ASSIGN_OR_RETURN(bool b, Bool(v, f));
      r->set_browser_required(b);
    } else if (key == "required_platform") {
      ASSIGN_OR_RETURN(*r->mutable_required_platform(), String(v, f));
    } else if (key == "required_role") {
      ASSIGN_OR_RETURN(*r->mutable_required_role(), String(v, f));
    } else if (key == "target_device_id") {
      ASSIGN_OR_RETURN(*r->mutable_target_device_id(), String(v, f));
    } else if (key == "required_tags") {
      if (!v.is_array()) return Bad(f, "expected an array of strings");
      for (const auto& t : v) {
        ASSIGN_OR_RETURN(std::string tag, String(t, f));
        r->add_required_tags(tag);
      }
    } else if (key == "timeout_seconds") {
      ASSIGN_OR_RETURN(double x, Number(v, f));
      r->set_timeout_seconds(x);
    } else if (key == "max_retries") {
      ASSIGN_OR_RETURN(int64_t n, Integer(v, f, kMaxRetriesRange));
      r->set_max_retries(static_cast<int32_t>(n));  // in int32 range: checked above
    }
  }
  return absl::OkStatus();
}

// One entry of `after`: "task-.." (condition ok), {"task_id", "condition"} or
// {"after_index", "condition"} (a batch's earlier entry; the core checks where it may appear).
absl::Status Dependency(const json& j, const std::string& f, ::retire_cluster::v1::Dependency* d) {
  if (j.is_string()) {
    d->set_task_id(j.get<std::string>());
    if (d->task_id().empty()) return Bad(f, "expected a task id, got an empty string");
    return absl::OkStatus();
  }
  if (!j.is_object()) return Bad(f, "expected a task id or an object {\"task_id\", \"condition\"}");
  RETURN_IF_ERROR(OnlyKnown(j, f, {"task_id", "after_index", "condition"}));
  const bool has_id = j.contains("task_id") && !j["task_id"].is_null();
  const bool has_index = j.contains("after_index") && !j["after_index"].is_null();
  if (has_id == has_index) return Bad(f, "expected exactly one of task_id and after_index");
  if (has_id) {
    ASSIGN_OR_RETURN(*d->mutable_task_id(), String(j["task_id"], f + ".task_id"));
    if (d->task_id().empty()) return Bad(f + ".task_id", "expected a task id, got an empty string");
  } else {
    ASSIGN_OR_RETURN(int64_t n, Integer(j["after_index"], f + ".after_index", kAfterIndexRange));
    d->set_after_index(static_cast<int32_t>(n));  // in int32 range: checked above
  }
  if (j.contains("condition") && !j["condition"].is_null()) {
    ASSIGN_OR_RETURN(std::string c, String(j["condition"], f + ".condition"));
    absl::StatusOr<::retire_cluster::v1::DependencyCondition> condition = ParseDependencyCondition(c);
    if (!condition.ok()) return Bad(f + ".condition", condition.status().message());
    d->set_condition(*condition);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view DependencyConditionName(::retire_cluster::v1::DependencyCondition c) {
  switch (c) {
    case ::retire_cluster::v1::DEPENDENCY_CONDITION_ANY: return "any";
    case ::retire_cluster::v1::DEPENDENCY_CONDITION_NOTOK: return "notok";
    default: return "ok";
  }
}

absl::StatusOr<::retire_cluster::v1::DependencyCondition> ParseDependencyCondition(absl::string_view name) {
  if (name == "ok") return ::retire_cluster::v1::DEPENDENCY_CONDITION_OK;
  if (name == "any") return ::retire_cluster::v1::DEPENDENCY_CONDITION_ANY;
  if (name == "notok") return ::retire_cluster::v1::DEPENDENCY_CONDITION_NOTOK;
  return absl::InvalidArgumentError(absl::StrCat("expected ok, any or notok, got '", name, "'"));
}

absl::string_view ParentCloseName(::retire_cluster::v1::ParentClose p) {
  return p == ::retire_cluster::v1::PARENT_CLOSE_ABANDON ? "abandon" : "cancel";
}

absl::StatusOr<::retire_cluster::v1::ParentClose> ParseParentClose(absl::string_view name) {
  if (name == "cancel") return ::retire_cluster::v1::PARENT_CLOSE_CANCEL;
  if (name == "abandon") return ::retire_cluster::v1::PARENT_CLOSE_ABANDON;
  return absl::InvalidArgumentError(absl::StrCat("expected cancel or abandon, got '", name, "'"));
}

absl::StatusOr<::retire_cluster::v1::TaskSpec> TaskSpecFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("body: expected a JSON object");
  RETURN_IF_ERROR(OnlyKnown(
      j, "", {"task_type", "payload", "priority", "requirements", "metadata", "idempotency_key", "after", "parent_close"}));
  ::retire_cluster::v1::TaskSpec spec;
  if (!j.contains("task_type")) return Bad("task_type", "required");
  ASSIGN_OR_RETURN(*spec.mutable_task_type(), String(j["task_type"], "task_type"));
  if (j.contains("payload") && !j["payload"].is_null()) {
    if (!j["payload"].is_object()) return Bad("payload", "expected a JSON object");
    RETURN_IF_ERROR(CheckJsonDepth(j["payload"], "payload"));  // dump() recurses per level
    spec.set_payload(j["payload"].dump());
  }
  if (j.contains("priority") && !j["priority"].is_null()) {
    ASSIGN_OR_RETURN(std::string p, String(j["priority"], "priority"));
    absl::StatusOr<::retire_cluster::v1::Priority> priority = ParsePriority(p);
    if (!priority.ok()) return Bad("priority", priority.status().message());
    spec.set_priority(*priority);
  }
  if (j.contains("requirements") && !j["requirements"].is_null()) {
    RETURN_IF_ERROR(Requirements(j["requirements"], spec.mutable_requirements()));
  }
  if (j.contains("metadata") && !j["metadata"].is_null()) {
    if (!j["metadata"].is_object()) return Bad("metadata", "expected an object of strings");
    for (const auto& [k, v] : j["metadata"].items()) {
      ASSIGN_OR_RETURN(std::string value, String(v, "metadata." + k));
      (*spec.mutable_metadata())[k] = value;
    }
  }
  if (j.contains("idempotency_key") && !j["idempotency_key"].is_null()) {
    ASSIGN_OR_RETURN(*spec.mutable_idempotency_key(), String(j["idempotency_key"], "idempotency_key"));
  }
  if (j.contains("after") && !j["after"].is_null()) {
    const json& after = j["after"];
    if (!after.is_array()) return Bad("after", "expected an array of task ids or {\"task_id\", \"condition\"} objects");
    for (size_t i = 0; i < after.size(); ++i) {
      RETURN_IF_ERROR(Dependency(after[i], absl::StrCat("after[", i, "]"), spec.add_after()));
    }
  }
  if (j.contains("parent_close") && !j["parent_close"].is_null()) {
    ASSIGN_OR_RETURN(std::string p, String(j["parent_close"], "parent_close"));
    absl::StatusOr<::retire_cluster::v1::ParentClose> close = ParseParentClose(p);
    if (!close.ok()) return Bad("parent_close", close.status().message());
    spec.set_parent_close(*close);
  }
  return spec;
}

}  // namespace rc
