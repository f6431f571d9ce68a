#pragma once
// A small command-line parser shared by every binary: `--name value`, `--name=value`,
// boolean `--name`, repeatable flags, and positional arguments. Errors name the flag.

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace rc {

struct FlagSpec {
  std::string name;        // without dashes
  std::string value_name;  // "" for a boolean flag
  std::string help;
  bool repeated = false;
};

class ParsedFlags {
 public:
  bool Has(absl::string_view name) const { return values_.contains(name); }
  // The last value given (or "" for a boolean flag); nullopt when absent.
  std::optional<std::string> Get(absl::string_view name) const;
  std::vector<std::string> GetAll(absl::string_view name) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Used by the parser.
  void Add(const std::string& name, std::string value) { values_[name].push_back(std::move(value)); }
  void AddPositional(std::string value) { positional_.push_back(std::move(value)); }

 private:
  absl::flat_hash_map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// Parses args[begin..]. With stop_at_positional, parsing ends at the first positional
// argument and *end is set to its index (args.size() when none).
// INVALID_ARGUMENT for an unknown flag, a missing value, or a repeated single flag.
absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args, size_t begin,
                                       const std::vector<FlagSpec>& specs,
                                       bool stop_at_positional = false, size_t* end = nullptr);

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs);

// Conversions with errors naming the flag: "--slots: expected an integer, got 'x'".
absl::StatusOr<int64_t> FlagInt(absl::string_view flag, absl::string_view value);
// An integer within [min, max], never truncated: "--max-retries: must be 0..100, got
// 4294967301" for one outside (also for one beyond int64).
absl::StatusOr<int64_t> FlagIntInRange(absl::string_view flag, absl::string_view value, int64_t min, int64_t max);
absl::StatusOr<double> FlagDouble(absl::string_view flag, absl::string_view value);
std::vector<std::string> SplitList(absl::string_view value);  // "a,b" -> {a, b}; blanks dropped

}  // namespace rc
