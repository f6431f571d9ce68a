#pragma once
// Typed access to a task's JSON payload, with errors naming the field
// ("payload.argv: expected an array of strings"). No exception escapes.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rc::worker {

class Payload {
 public:
  // INVALID_ARGUMENT when `text` is not a JSON object.
  static absl::StatusOr<Payload> Parse(const std::string& text);

  bool Has(const std::string& key) const { return json_.contains(key) && !json_.at(key).is_null(); }
  absl::StatusOr<std::optional<std::string>> String(const std::string& key) const;
  absl::StatusOr<std::optional<double>> Number(const std::string& key) const;
  absl::StatusOr<std::optional<bool>> Bool(const std::string& key) const;
  absl::StatusOr<std::vector<std::string>> StringArray(const std::string& key) const;  // absent = {}
  absl::StatusOr<std::map<std::string, std::string>> StringMap(const std::string& key) const;  // absent = {}
  // A positive number of seconds, or nullopt when absent.
  absl::StatusOr<std::optional<double>> Seconds(const std::string& key) const;

 private:
  explicit Payload(nlohmann::json j) : json_(std::move(j)) {}
  nlohmann::json json_;
};

}  // namespace rc::worker
