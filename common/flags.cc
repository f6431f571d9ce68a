#include "common/flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rc {

std::optional<std::string> ParsedFlags::Get(absl::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedFlags::GetAll(absl::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<std::string>& args, size_t begin,
                                       const std::vector<FlagSpec>& specs,
                                       bool stop_at_positional, size_t* end) {
  ParsedFlags out;
  size_t i = begin;
  for (; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "-" || !absl::StartsWith(arg, "--")) {
      if (stop_at_positional) break;
      out.AddPositional(std::string(arg));
      continue;
    }
    if (arg == "--") {  // everything after is positional
      for (++i; i < args.size(); ++i) out.AddPositional(args[i]);
      break;
    }
    absl::string_view body = arg.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      inline_value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == body) spec = &s;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", body, " (see --help)"));
    }
    if (!spec->repeated && out.Has(spec->name)) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", body, " given more than once"));
    }
    if (spec->value_name.empty()) {
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", body, " takes no value"));
      }
      out.Add(spec->name, "");
      continue;
    }
    if (inline_value.has_value()) {
      out.Add(spec->name, *inline_value);
    } else if (i + 1 < args.size()) {
      out.Add(spec->name, args[++i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", body, " needs a value (", spec->value_name, ")"));
    }
  }
  if (end != nullptr) *end = i;
  return out;
}

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& s : specs) {
    std::string left = absl::StrCat("  --", s.name);
    if (!s.value_name.empty()) absl::StrAppend(&left, " ", s.value_name);
    if (left.size() < 28) left.resize(28, ' ');
    else absl::StrAppend(&left, "\n", std::string(28, ' '));
    absl::StrAppend(&out, left, s.help, s.repeated ? " (repeatable)" : "", "\n");
  }
  return out;
}

absl::StatusOr<int64_t> FlagInt(absl::string_view flag, absl::string_view value) {
  int64_t v;
  if (!absl::SimpleAtoi(value, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected an integer, got '", value, "'"));
  }
  return v;
}

absl::StatusOr<int64_t> FlagIntInRange(absl::string_view flag, absl::string_view value, int64_t min,
                                       int64_t max) {
  absl::StatusOr<int64_t> v = FlagInt(flag, value);
  // Digits beyond int64 are still a number out of range, not "not an integer".
  absl::string_view digits = absl::StripAsciiWhitespace(value);
  absl::ConsumePrefix(&digits, "-") || absl::ConsumePrefix(&digits, "+");
  const bool all_digits = !digits.empty() && digits.find_first_not_of("0123456789") == absl::string_view::npos;
  if (!v.ok() && !all_digits) return v.status();
  if (!v.ok() || *v < min || *v > max) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be ", min, "..", max, ", got ", value));
  }
  return v;
}

absl::StatusOr<double> FlagDouble(absl::string_view flag, absl::string_view value) {
  double v;
  if (!absl::SimpleAtod(value, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected a number, got '", value, "'"));
  }
  return v;
}

std::vector<std::string> SplitList(absl::string_view value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

}  // namespace rc
