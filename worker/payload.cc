#include "worker/payload.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace rc::worker {
namespace {
absl::Status Bad(const std::string& key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("payload.", key, ": ", what));
}
}  // namespace

absl::StatusOr<Payload> Payload::Parse(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text.empty() ? "{}" : text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("payload must be a JSON object");
  return Payload(std::move(j));
}

absl::StatusOr<std::optional<std::string>> Payload::String(const std::string& key) const {
  if (!Has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  if (!v.is_string()) return Bad(key, "expected a string");
  return v.get<std::string>();
}

absl::StatusOr<std::optional<double>> Payload::Number(const std::string& key) const {
  if (!Has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  if (!v.is_number()) return Bad(key, "expected a number");
  return v.get<double>();
}

absl::StatusOr<std::optional<bool>> Payload::Bool(const std::string& key) const {
  if (!Has(key)) return std::nullopt;
  const auto& v = json_.at(key);
  if (!v.is_boolean()) return Bad(key, "expected true or false");
  return v.get<bool>();
}

absl::StatusOr<std::vector<std::string>> Payload::StringArray(const std::string& key) const {
  std::vector<std::string> out;
  if (!Has(key)) return out;
  const auto& v = json_.at(key);
  if (!v.is_array()) return Bad(key, "expected an array of strings");
  for (const auto& item : v) {
    if (!item.is_string()) return Bad(key, "expected an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> Payload::StringMap(const std::string& key) const {
  std::map<std::string, std::string> out;
  if (!Has(key)) return out;
  const auto& v = json_.at(key);
  if (!v.is_object()) return Bad(key, "expected an object of strings");
  for (const auto& [k, item] : v.items()) {
    if (!item.is_string()) return Bad(absl::StrCat(key, ".", k), "expected a string");
    out[k] = item.get<std::string>();
  }
  return out;
}

absl::StatusOr<std::optional<double>> Payload::Seconds(const std::string& key) const {
  absl::StatusOr<std::optional<double>> n = Number(key);
  if (!n.ok() || !n->has_value()) return n;
  if (!(**n > 0) || !std::isfinite(**n)) return Bad(key, "must be a number of seconds greater than 0");
  return n;
}

}  // namespace rc::worker
