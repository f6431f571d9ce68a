#include "worker/browser/browser_session.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/browser/browser_pool.h"
#include "worker/handlers/task_env.h"
#include "worker/payload.h"

namespace rc::worker {
namespace {

constexpr const char* kKeys[] = {"url", "profile", "complete_on", "headless"};

absl::Status BadUrl(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// The scheme of `url` (lowercase), or "" when it has none: RFC 3986's
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'.
std::string SchemeOf(absl::string_view url) {
  size_t colon = url.find(':');
  if (colon == absl::string_view::npos || colon == 0) return "";
  if (!absl::ascii_isalpha(url[0])) return "";
  for (size_t i = 1; i < colon; ++i) {
    char c = url[i];
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return "";
  }
  return absl::AsciiStrToLower(url.substr(0, colon));
}

}  // namespace

absl::Status CheckSessionUrl(absl::string_view url, absl::string_view field) {
  if (url.empty()) return BadUrl(field, "must not be empty");
  if (url.size() > kMaxSessionUrlBytes) {
    return BadUrl(field, absl::StrCat("longer than ", kMaxSessionUrlBytes, " bytes"));
  }
  for (char c : url) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return BadUrl(field, "must not contain whitespace or control characters (percent-encode them)");
    }
  }
  const std::string scheme = SchemeOf(url);
  if (scheme.empty()) {
    return BadUrl(field, "needs a scheme: http://, https://, about:blank or data:");
  }
  if (scheme == "http" || scheme == "https") {
    absl::string_view rest = url.substr(scheme.size() + 1);
    if (!absl::StartsWith(rest, "//")) return BadUrl(field, absl::StrCat(scheme, ": URL must start with ", scheme, "://"));
    rest.remove_prefix(2);
    size_t end = rest.find_first_of("/?#");
    if (rest.substr(0, end).empty()) return BadUrl(field, absl::StrCat(scheme, ": URL has no host"));
    return absl::OkStatus();
  }
  if (scheme == "about") {
    if (absl::EqualsIgnoreCase(url, "about:blank")) return absl::OkStatus();
    return BadUrl(field, "of the about: URLs only about:blank is allowed");
  }
  if (scheme == "data") return absl::OkStatus();
  return BadUrl(field, absl::StrCat("scheme '", scheme,
                                    ":' refused (only http, https, about:blank and data: are opened: file: "
                                    "would read the worker's files, javascript: and chrome: run outside any page)"));
}

absl::StatusOr<SessionRequest> ParseSessionRequest(const std::string& payload) {
  ASSIGN_OR_RETURN(Payload p, Payload::Parse(payload));
  // Payload has no key listing: read the keys from the (already valid) object once more.
  const nlohmann::json j = nlohmann::json::parse(payload.empty() ? "{}" : payload, nullptr, false);
  for (const auto& item : j.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), item.key()) == std::end(kKeys)) {
      return absl::InvalidArgumentError(absl::StrCat("payload.", item.key(),
                                                     ": unknown key (browser_session takes url, profile, "
                                                     "complete_on, headless)"));
    }
  }
  SessionRequest r;
  ASSIGN_OR_RETURN(std::optional<std::string> url, p.String("url"));
  if (!url.has_value()) return absl::InvalidArgumentError("payload.url: required (the page the browser opens)");
  RETURN_IF_ERROR(CheckSessionUrl(*url, "payload.url"));
  r.url = std::move(*url);
  ASSIGN_OR_RETURN(std::optional<std::string> profile, p.String("profile"));
  if (profile.has_value()) {
    RETURN_IF_ERROR(CheckProfileName(*profile, "payload.profile"));
    r.profile = std::move(*profile);
  }
  ASSIGN_OR_RETURN(std::optional<std::string> complete_on, p.String("complete_on"));
  if (complete_on.has_value()) {
    if (*complete_on == "exit") {
      r.complete_on = CompleteOn::kExit;
    } else if (*complete_on == "callback") {
      r.complete_on = CompleteOn::kCallback;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("payload.complete_on: '", *complete_on, "' is neither \"exit\" nor \"callback\""));
    }
  }
  ASSIGN_OR_RETURN(r.headless, p.Bool("headless"));
  return r;
}

absl::StatusOr<bool> ChooseHeadless(std::optional<bool> requested, const std::string& display) {
  if (!requested.has_value()) return display.empty();
  if (!*requested && display.empty()) {
    return absl::FailedPreconditionError(
        "payload.headless: false needs an X display, and this worker has none (start it with --display :N)");
  }
  return *requested;
}

std::vector<std::string> SessionEnvironment(const SessionEnvInputs& in) {
  std::map<std::string, std::string> env;
  for (const std::string& kv : HostEnvironment(in.dir)) {
    size_t eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env["TMPDIR"] = in.tmp_dir;
  if (!in.display.empty()) env["DISPLAY"] = in.display;
  env["RC_TASK_ID"] = in.task_id;
  if (!in.callback_url.empty()) env["RC_CALLBACK_URL"] = in.callback_url;
  if (!in.task_token.empty()) env["RETIRE_CLUSTER_TOKEN"] = in.task_token;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

SessionOutcome DecideSessionOutcome(CompleteOn mode, const SessionEnd& end) {
  SessionOutcome out;
  if (end.completion.has_value()) {
    const ExternalCompletion& c = *end.completion;
    out.result = c.result.empty() ? "{}" : c.result;
    if (c.status != ::retire_cluster::v1::TASK_STATUS_SUCCESS) {
      out.failure = absl::AbortedError(c.error_message.empty() ? "the callback reported failure" : c.error_message);
    }
    return out;
  }
  nlohmann::json result = {{"ended", end.exited ? "exit" : "stopped"},
                           {"exit_code", end.exit_code},
                           {"url", end.url},
                           {"pid", end.pid},
                           {"cdp_url", end.cdp_url}};
  if (end.signal != 0) result["signal"] = end.signal;
  out.result = result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!end.exited) {
    out.failure = absl::AbortedError("the browser was stopped before the session ended");
    return out;
  }
  const std::string how = end.signal != 0 ? absl::StrCat("signal ", end.signal) : absl::StrCat("code ", end.exit_code);
  if (end.cdp_url.empty()) {
    out.failure = absl::UnavailableError(
        absl::StrCat("the browser exited (", how, ") before it came up (it wrote no DevToolsActivePort); see its stderr"));
  } else if (mode == CompleteOn::kCallback) {
    out.failure = absl::AbortedError(
        absl::StrCat("the browser exited (", how, ") before POST /tasks/", end.task_id, "/complete"));
  }
  return out;
}

}  // namespace rc::worker
