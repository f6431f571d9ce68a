#include "worker/handlers/js_engine_dir.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/handlers/bundled_dir.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "worker/execution/stop_token.h"
#include "worker/process/process_runner.h"

namespace rc::worker {
namespace fs = std::filesystem;

const std::vector<std::string>& RequiredEngineFiles() {
  static const std::vector<std::string> files = {
      "host.js", "node_modules/quickjs-emscripten-core/package.json",
      "node_modules/@jitl/quickjs-wasmfile-release-sync/package.json"};
  return files;
}

absl::StatusOr<JsEngineDir> ChooseJsEngineDir(const std::optional<std::string>& configured, const std::string& binary,
                                              const MissingEngineFiles& missing) {
  static const BundledDirRule rule{"js_engine_dir",
                                   " (the directory the build's js_engine target fills: build/worker/js, or "
                                   "an install's share/retire-cluster/js)",
                                   {{"js", "build tree"}, {"../share/retire-cluster/js", "installed"}}};
  absl::StatusOr<BundledDir> d = ChooseBundledDir(rule, configured, binary, missing);
  if (!d.ok()) return d.status();
  return JsEngineDir{std::move(d->dir), std::move(d->how)};
}

std::vector<std::string> MissingEngineFilesOnDisk(const std::string& dir) {
  return MissingFilesOnDisk(dir, RequiredEngineFiles());
}

absl::StatusOr<NodeVersion> ParseNodeVersion(absl::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("not a node version: '", t.substr(0, 64), "'"));
  };
  if (t.size() < 2 || t[0] != 'v') return bad();
  std::vector<absl::string_view> parts = absl::StrSplit(t.substr(1), '.');
  if (parts.size() != 3) return bad();
  NodeVersion v;
  // A pre-release suffix ("21.0.0-pre") is allowed on the last part.
  absl::string_view patch = parts[2].substr(0, parts[2].find_first_not_of("0123456789"));
  if (!absl::SimpleAtoi(parts[0], &v.major) || !absl::SimpleAtoi(parts[1], &v.minor) ||
      !absl::SimpleAtoi(patch, &v.patch) || v.major < 0 || v.minor < 0 || v.patch < 0) {
    return bad();
  }
  return v;
}

absl::StatusOr<NodeProgram> FindJsNode(const std::string& search_path,
                                       const std::function<std::string(const std::string&, const std::string&)>& find,
                                       const NodeVersionProbe& probe) {
  constexpr char kHow[] = "install Debian's nodejs (scripts/install-deps.sh does)";
  const std::string node = find("node", search_path);
  if (node.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("js tasks need node >= ", kMinNodeMajor, ": no node on ", search_path, "; ", kHow));
  }
  absl::StatusOr<std::string> printed = probe(node);
  if (!printed.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("js tasks need node >= ", kMinNodeMajor, ": ", node, " --version failed: ",
                     printed.status().message()));
  }
  absl::StatusOr<NodeVersion> v = ParseNodeVersion(*printed);
  if (!v.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("js tasks need node >= ", kMinNodeMajor, ": ", node, " --version printed ", v.status().message()));
  }
  const std::string version = absl::StrCat("v", v->major, ".", v->minor, ".", v->patch);
  if (v->major < kMinNodeMajor) {
    return absl::FailedPreconditionError(absl::StrCat("js tasks need node >= ", kMinNodeMajor, ": ", node, " is ",
                                                      version, "; ", kHow, " or a newer node"));
  }
  return NodeProgram{node, version};
}

absl::StatusOr<std::string> NodeVersionOnDisk(const std::string& path) {
  ProcessSpec spec;
  spec.argv = {path, "--version"};
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
  spec.cwd = "/";
  spec.output_cap = 4096;
  spec.limits.address_space_bytes = 0;  // node reserves address space generously
  spec.deadline = absl::Now() + absl::Seconds(10);
  StopToken never(absl::InfiniteFuture());
  absl::StatusOr<ProcessResult> r = RunProcess(spec, never);
  if (!r.ok()) return r.status();
  if (r->deadline_passed) return absl::DeadlineExceededError("no answer within 10s");
  if (r->exit_code != 0) {
    return absl::UnknownError(absl::StrCat("exit code ", r->exit_code, ": ", absl::StripAsciiWhitespace(r->stderr)));
  }
  return r->stdout;
}

}  // namespace rc::worker
