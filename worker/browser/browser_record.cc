#include "worker/browser/browser_record.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace rc::worker {
namespace {

using nlohmann::json;

constexpr size_t kMaxUrlBytes = 8192;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("payload.", field, ": ", why));
}

}  // namespace

const std::vector<std::string>& RecordTargets() {
  static const std::vector<std::string> targets = {
      "python", "python-async", "python-pytest", "javascript",    "playwright-test", "java",
      "java-junit", "csharp",   "csharp-mstest", "csharp-nunit", "csharp-xunit"};
  return targets;
}

absl::StatusOr<RecordRequest> ParseRecordPayload(const std::string& payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("payload: expected a JSON object");
  static const std::vector<std::string> known = {"url", "target", "profile", "max_seconds"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Invalid(key, absl::StrCat("unknown key (browser_record takes ", absl::StrJoin(known, ", "), ")"));
    }
  }
  RecordRequest r;
  if (!j.contains("url") || !j["url"].is_string() || j["url"].get<std::string>().empty()) {
    return Invalid("url", "required, the http(s) URL the recording starts at");
  }
  r.url = j["url"].get<std::string>();
  if (!absl::StartsWith(r.url, "http://") && !absl::StartsWith(r.url, "https://")) {
    return Invalid("url", absl::StrCat("'", r.url.substr(0, 100), "' is not an http:// or https:// URL"));
  }
  if (r.url.size() > kMaxUrlBytes) return Invalid("url", absl::StrCat("longer than ", kMaxUrlBytes, " bytes"));
  if (j.contains("target") && !j["target"].is_null()) {
    if (!j["target"].is_string()) return Invalid("target", "expected a string");
    r.target = j["target"].get<std::string>();
    const auto& targets = RecordTargets();
    if (std::find(targets.begin(), targets.end(), r.target) == targets.end()) {
      return Invalid("target", absl::StrCat("'", r.target.substr(0, 64), "' is not a language the recorder writes (",
                                            absl::StrJoin(targets, ", "), ")"));
    }
  }
  if (j.contains("profile") && !j["profile"].is_null()) {
    if (!j["profile"].is_string()) return Invalid("profile", "expected a string (a profile name)");
    r.profile = j["profile"].get<std::string>();
  }
  if (j.contains("max_seconds") && !j["max_seconds"].is_null()) {
    if (!j["max_seconds"].is_number()) return Invalid("max_seconds", "expected a number of seconds");
    const double s = j["max_seconds"].get<double>();
    if (!(s > 0) || s > kMaxRecordSeconds) {
      return Invalid("max_seconds", absl::StrCat("must be more than 0 and at most ", kMaxRecordSeconds));
    }
    r.max_seconds = s;
  }
  return r;
}

std::string RecordJobJson(const RecordRequest& request, const std::string& chromium, const std::string& work_dir,
                          const std::string& user_data_dir) {
  json job = {{"url", request.url},
              {"target", request.target},
              {"chromium", chromium},
              {"work_dir", work_dir},
              {"max_seconds", request.max_seconds}};
  if (!user_data_dir.empty()) job["user_data_dir"] = user_data_dir;
  return job.dump();
}

absl::StatusOr<std::string> RecordResultJson(absl::string_view recorder_stdout,
                                             const std::optional<std::string>& profile) {
  absl::string_view last;
  for (absl::string_view line : absl::StrSplit(recorder_stdout, '\n')) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = line;
  }
  json j = json::parse(last.begin(), last.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("code") || !j["code"].is_string() || !j.contains("ended")) {
    return absl::InternalError(
        absl::StrCat("the recorder printed no result ({\"code\", \"ended\", ...}) but '", last.substr(0, 200), "'"));
  }
  if (profile.has_value()) j["profile"] = *profile;
  return j.dump();
}

const std::vector<std::string>& RequiredRecorderFiles() {
  static const std::vector<std::string> files = {"recorder.js", "node_modules/playwright-core/package.json"};
  return files;
}

}  // namespace rc::worker
