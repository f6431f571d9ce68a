#pragma once
// Typed reads from one YAML mapping, remembering which keys were used so that unknown
// keys can be reported. yaml-cpp exceptions stop here and become Status.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace rc {

class YamlFields {
 public:
  // INVALID_ARGUMENT if `text` is not YAML or not a mapping (an empty file is fine).
  static absl::Status Parse(const std::string& text, const std::string& source, YamlFields* out);

  // Absent keys leave *out untouched.
  absl::Status Read(const std::string& key, std::string* out);
  // Present (even "") sets *out; absent or null leaves it untouched (nullopt = unset).
  absl::Status Read(const std::string& key, std::optional<std::string>* out);
  absl::Status Read(const std::string& key, int* out);
  absl::Status Read(const std::string& key, int64_t* out);
  absl::Status Read(const std::string& key, bool* out);
  absl::Status Read(const std::string& key, std::vector<std::string>* out);
  absl::Status ReadNumber(const std::string& key, double* out);
  // Seconds as a number ("1.5").
  absl::Status ReadSeconds(const std::string& key, absl::Duration* out);

  // INVALID_ARGUMENT naming the first key that no Read asked for.
  absl::Status CheckNoUnknownKeys() const;

 private:
  absl::Status Error(const std::string& key, const std::string& problem) const;
  YAML::Node node_;
  std::string source_;
  absl::flat_hash_set<std::string> used_;
};

// Reads a whole file; NOT_FOUND / PERMISSION_DENIED naming the path.
absl::Status ReadFile(const std::string& path, std::string* out);

}  // namespace rc
