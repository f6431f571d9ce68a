#include "coordinator/core/js_payload.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace rc::coordinator {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("payload.", field, ": ", problem));
}

// An integer, or a number with an integral value (64.0: what some JSON writers print).
std::optional<int64_t> AsInteger(const Json& j) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return j.get<int64_t>();
  }
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// What a value looked like, for an error (cut short: it could be anything).
std::string Shown(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return s;
}

absl::StatusOr<Json> ParseObject(absl::string_view text) {
  RETURN_IF_ERROR(ValidateJsonObject(text, "payload"));  // an object, not too deep
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("payload: must be a JSON object");
  return j;
}

absl::Status CheckMemory(const Json& j, std::optional<int64_t>* out) {
  std::optional<int64_t> mb = AsInteger(j);
  if (!mb.has_value() || *mb < kMinJsMemoryMb || *mb > kMaxJsMemoryMb) {
    return Bad("memory_mb", absl::StrCat("must be an integer ", kMinJsMemoryMb, "..", kMaxJsMemoryMb, " (MiB), got ",
                                         Shown(j)));
  }
  *out = mb;
  return absl::OkStatus();
}

absl::Status CheckCode(const Json& j) {
  if (!j.is_string()) return Bad("code", "must be a string (the module's text)");
  if (j.get_ref<const std::string&>().empty()) return Bad("code", "must not be empty");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JsPayload> ParseSubmittedJsPayload(absl::string_view text) {
  ASSIGN_OR_RETURN(Json j, ParseObject(text));
  JsPayload p;
  for (auto& [key, value] : j.items()) {
    if (key == "code") {
      RETURN_IF_ERROR(CheckCode(value));
      p.code = value.get<std::string>();
    } else if (key == "name") {
      if (!value.is_string()) return Bad("name", "must be a string (a published task's name)");
      RETURN_IF_ERROR(CheckJsTaskName("payload.name", value.get_ref<const std::string&>()));
      p.name = value.get<std::string>();
    } else if (key == "version") {
      if (value.is_null()) continue;  // the latest, as when left out
      std::optional<int64_t> v = AsInteger(value);
      if (!v.has_value() || *v < 0 || *v > INT32_MAX) {
        return Bad("version", absl::StrCat("must be a version number (1, 2, ...; 0 = the latest), got ", Shown(value)));
      }
      p.version = *v;
    } else if (key == "input") {
      p.input = std::move(value);
    } else if (key == "memory_mb") {
      RETURN_IF_ERROR(CheckMemory(value, &p.memory_mb));
    } else {
      return Bad(key, "unknown field (a js payload holds code or name, and version, input, memory_mb)");
    }
  }
  if (p.code.has_value() && p.name.has_value()) {
    return Bad("code", "give either code (a module's text) or name (a published task), not both");
  }
  if (!p.code.has_value() && !p.name.has_value()) {
    return Bad("code", "missing: give code (a module's text) or name (a published task)");
  }
  if (p.code.has_value() && j.contains("version")) {
    return Bad("version", "only with name (it picks a published task's version)");
  }
  return p;
}

std::string ResolvedJsPayload(const JsPayload& submitted, const std::string& name, int64_t version,
                              const std::string& sha256, const std::string& code) {
  Json out = Json::object();
  out["name"] = name;
  out["version"] = version;
  out["sha256"] = sha256;
  out["code"] = code;
  out["input"] = submitted.input;
  if (submitted.memory_mb.has_value()) out["memory_mb"] = *submitted.memory_mb;
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::Status CheckStoredJsPayload(absl::string_view text) {
  ASSIGN_OR_RETURN(Json j, ParseObject(text));
  if (!j.contains("code")) {
    if (j.contains("name")) return Bad("code", "missing: a published task's name is resolved by the client API");
    return Bad("code", "missing: give code (a module's text) or name (a published task)");
  }
  std::optional<int64_t> unused;
  for (const auto& [key, value] : j.items()) {
    if (key == "code") {
      RETURN_IF_ERROR(CheckCode(value));
    } else if (key == "memory_mb") {
      RETURN_IF_ERROR(CheckMemory(value, &unused));
    } else if (key == "name") {
      if (!value.is_string()) return Bad("name", "must be a string (a published task's name)");
      RETURN_IF_ERROR(CheckJsTaskName("payload.name", value.get_ref<const std::string&>()));
      // A resolved payload says which version it ran: both come with the name.
      std::optional<int64_t> v = j.contains("version") ? AsInteger(j["version"]) : std::nullopt;
      if (!v.has_value() || *v < 1) return Bad("version", "a resolved published task needs its version (1, 2, ...)");
      if (!j.contains("sha256") || !j["sha256"].is_string()) {
        return Bad("sha256", "a resolved published task needs its code's sha256");
      }
    } else if (key != "version" && key != "sha256" && key != "input") {
      return Bad(key, "unknown field (a js payload holds code or name, and version, input, memory_mb)");
    }
  }
  if (!j.contains("name") && (j.contains("version") || j.contains("sha256"))) {
    return Bad(j.contains("version") ? "version" : "sha256", "only with name (a published task)");
  }
  return absl::OkStatus();
}

absl::Status CheckJsTaskName(absl::string_view field, absl::string_view name) {
  auto bad = [&](absl::string_view problem) { return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem)); };
  if (name.empty()) return bad("must not be empty");
  if (name.size() > kMaxJsTaskNameLength) {
    return bad(absl::StrCat("longer than ", kMaxJsTaskNameLength, " characters"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return bad(absl::StrCat("'", name, "' may only hold letters, digits, '.', '_' and '-'"));
    }
  }
  if (name.front() == '.' || name.front() == '-') {
    return bad(absl::StrCat("'", name, "' must not start with '.' or '-'"));
  }
  return absl::OkStatus();
}

}  // namespace rc::coordinator
