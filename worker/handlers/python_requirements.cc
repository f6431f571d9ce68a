#include "worker/handlers/python_requirements.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace rc::worker {
namespace {

// A cursor over a requirement; each Take* consumes what it matched and says whether it did.
struct Cursor {
  absl::string_view s;

  void SkipSpaces() {
    while (!s.empty() && (s[0] == ' ' || s[0] == '\t')) s.remove_prefix(1);
  }
  bool Take(absl::string_view token) { return absl::ConsumePrefix(&s, token); }

  // PEP 508 identifier: letters and digits at both ends, '.', '-', '_' inside.
  bool TakeName() {
    size_t n = 0;
    while (n < s.size() && (absl::ascii_isalnum(static_cast<unsigned char>(s[n])) || s[n] == '.' || s[n] == '-' ||
                            s[n] == '_')) {
      ++n;
    }
    if (n == 0 || !absl::ascii_isalnum(static_cast<unsigned char>(s[0])) ||
        !absl::ascii_isalnum(static_cast<unsigned char>(s[n - 1]))) {
      return false;
    }
    s.remove_prefix(n);
    return true;
  }

  bool TakeVersion() {
    size_t n = 0;
    while (n < s.size() && (absl::ascii_isalnum(static_cast<unsigned char>(s[n])) ||
                            absl::string_view("._*+!-").find(s[n]) != absl::string_view::npos)) {
      ++n;
    }
    s.remove_prefix(n);
    return n > 0;
  }

  bool TakeSpecifier() {
    SkipSpaces();
    bool op = false;
    for (absl::string_view o : {"===", "~=", "==", "!=", "<=", ">=", "<", ">"}) {
      if (Take(o)) {
        op = true;
        break;
      }
    }
    if (!op) return false;
    SkipSpaces();
    return TakeVersion();
  }

  // specifier ("," specifier)*
  bool TakeSpecifiers() {
    if (!TakeSpecifier()) return false;
    for (SkipSpaces(); Take(","); SkipSpaces()) {
      if (!TakeSpecifier()) return false;
    }
    return true;
  }

  bool TakeExtras() {
    SkipSpaces();
    if (!TakeName()) return false;
    for (SkipSpaces(); Take(","); SkipSpaces()) {
      SkipSpaces();
      if (!TakeName()) return false;
    }
    return Take("]");
  }
};

std::string Shown(absl::string_view requirement) {
  return absl::CHexEscape(requirement.substr(0, 120));
}

bool IsRemoteUrl(absl::string_view s) {
  return absl::StartsWithIgnoreCase(s, "http://") || absl::StartsWithIgnoreCase(s, "https://");
}

}  // namespace

bool IsNamedRequirement(absl::string_view requirement) {
  if (requirement.size() > kMaxRequirementLength) return false;
  Cursor c{absl::StripAsciiWhitespace(requirement)};
  if (!c.TakeName()) return false;
  c.SkipSpaces();
  if (c.Take("[") && !c.TakeExtras()) return false;
  c.SkipSpaces();
  if (c.Take("(")) {
    if (!c.TakeSpecifiers()) return false;
    c.SkipSpaces();
    if (!c.Take(")")) return false;
  } else if (!c.s.empty() && !c.TakeSpecifiers()) {
    return false;
  }
  c.SkipSpaces();
  return c.s.empty();
}

absl::Status CheckRequirement(absl::string_view requirement, absl::string_view mode) {
  const absl::string_view r = absl::StripAsciiWhitespace(requirement);
  if (absl::StartsWith(r, "-")) {
    return absl::InvalidArgumentError(absl::StrCat("payload.requirements: '", Shown(requirement),
                                                   "' looks like a pip option; only requirements are allowed"));
  }
  if (mode != "any") {
    if (IsNamedRequirement(r)) return absl::OkStatus();
    // What every worker refuses stays permanent; what a python_requirements: any worker
    // would install is this worker's refusal only (FAILED_PRECONDITION: retried, maybe elsewhere).
    if (absl::Status any = CheckRequirement(r, "any"); !any.ok()) return any;
    return absl::FailedPreconditionError(absl::StrCat(
        "payload.requirements: '", Shown(requirement),
        "' is not a package name with optional extras and version specifiers; this worker has python_requirements: "
        "names (local paths, URLs and VCS requirements need python_requirements: any)"));
  }
  if (r.size() > kMaxRequirementLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload.requirements: longer than ", kMaxRequirementLength, " characters"));
  }
  if (r.find('\0') != absl::string_view::npos || r.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("payload.requirements: '", Shown(requirement),
                                                   "' holds a control character"));
  }
  if (r.find('/') != absl::string_view::npos && r.find("://") == absl::string_view::npos && !absl::StartsWith(r, "/")) {
    return absl::InvalidArgumentError(absl::StrCat("payload.requirements: '", Shown(requirement),
                                                   "' is a relative path, which means nothing on a worker; give an "
                                                   "absolute path"));
  }
  return absl::OkStatus();
}

std::string LocalRequirementPath(absl::string_view requirement) {
  absl::string_view r = absl::StripAsciiWhitespace(requirement);
  const size_t file_url = r.find("file://");
  if (file_url != absl::string_view::npos) {
    r = r.substr(file_url + 7);
    if (absl::StartsWithIgnoreCase(r, "localhost/")) r.remove_prefix(9);
  } else if (!absl::StartsWith(r, "/")) {
    return "";
  }
  // A path ends where pip's extras, markers, query or fragment begin.
  return std::string(r.substr(0, r.find_first_of("[;#? \t")));
}

absl::StatusOr<PackageSource> ParsePackageSource(const std::string& index_url) {
  PackageSource source;
  if (index_url.empty()) return source;
  if (IsRemoteUrl(index_url)) {
    source.pip_args = {"--index-url", index_url};
    return source;
  }
  std::string dir = index_url;
  if (absl::StartsWith(dir, "file://")) dir = dir.substr(7);
  if (!absl::StartsWith(dir, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "python_index_url: '", index_url, "' is neither an http(s) index URL nor an absolute directory (or file:// URL)"));
  }
  source.pip_args = {"--no-index", "--find-links", dir};
  source.local_dir = dir;
  source.remote = false;
  return source;
}

absl::StatusOr<bool> InstallNetwork(const PackageSource& source, absl::string_view mode, bool internet_required) {
  if (!source.remote) return false;
  if (mode != "any" || internet_required) return true;
  return absl::FailedPreconditionError(
      "python_script: installing from a remote package index needs the network, and under python_requirements: any "
      "a source build would run with it although the task has no internet_required; submit it with internet_required, "
      "or give this worker a local python_index_url (a directory of wheels)");
}

std::vector<std::string> PipInstallOptions(const PackageSource& source, absl::string_view mode) {
  std::vector<std::string> args = {"--no-input", "--disable-pip-version-check", "--no-cache-dir"};
  args.push_back(mode == "any" ? "--prefer-binary" : "--only-binary=:all:");
  args.insert(args.end(), source.pip_args.begin(), source.pip_args.end());
  return args;
}

}  // namespace rc::worker
