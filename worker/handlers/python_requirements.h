#pragma once
// python_script dependency installs as policy (pure functions, no I/O): which
// requirements a task may name, where pip gets packages from, and whether the install
// step may use the network. VenvCache (the mechanism) runs the install inside the task's
// containment tier as these decide.
//
// Design assumption: an install runs code only from what the worker lets in. Under
// `names` (the default) a requirement is a package name with version specifiers and pip
// takes wheels only (--only-binary=:all:), so installing runs pip's code and no
// package's: no setup.py, no build backend. Under `any`, local paths, URLs and VCS
// requirements are accepted and source distributions build (--prefer-binary), running
// their code inside the install sandbox.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rc::worker {

constexpr size_t kMaxRequirementLength = 512;

// True for a PEP 508 name with optional [extras] and optional version specifiers
// ("numpy", "requests[socks]>=2.28,<3", "foo (==1.0)"), and nothing else: no URL, no
// path, no environment marker, no option. Pure.
bool IsNamedRequirement(absl::string_view requirement);

// OK when a task may name `requirement` on a worker whose python_requirements is `mode`
// ("names" or "any"). Otherwise an error naming the requirement: INVALID_ARGUMENT (the
// payload alone decides: a permanent refusal, handler.h) under either mode for a pip
// option ("-e", "--index-url=..."), a relative path (it has no meaning on a worker), a
// control character or excess length; FAILED_PRECONDITION under names for anything else
// IsNamedRequirement refuses (a path, URL or VCS requirement, which a worker with
// python_requirements: any would install).
absl::Status CheckRequirement(absl::string_view requirement, absl::string_view mode);

// The local file or directory a requirement names ("/srv/pkg", "file:///srv/pkg.tar.gz",
// "pkg @ file:///srv/pkg"), to be made readable inside the install sandbox; "" when it
// names none.
std::string LocalRequirementPath(absl::string_view requirement);

// Where pip gets packages from, from WorkerConfig.python_index_url.
struct PackageSource {
  std::vector<std::string> pip_args;  // e.g. {"--index-url", URL} or {"--no-index", "--find-links", DIR}
  std::string local_dir;              // bound read-only into the install sandbox; "" when remote
  bool remote = true;                 // reaching it needs the network
};

// "" -> pip's default index; "http://..." or "https://..." -> that index (PEP 503
// simple API); "/dir" or "file:///dir" -> a local directory of wheels (and, under any,
// sdists) with no index at all. INVALID_ARGUMENT naming python_index_url otherwise.
absl::StatusOr<PackageSource> ParsePackageSource(const std::string& index_url);

// Whether the install step runs with the network, when the tier isolates it (bwrap):
// never for a local source; for a remote one under names (only pip's own code runs, it
// fetches what the configured index names), and under any only for a task with
// internet_required: a source build's code would otherwise get the network its task was
// not given. FAILED_PRECONDITION saying so in that last case.
absl::StatusOr<bool> InstallNetwork(const PackageSource& source, absl::string_view mode, bool internet_required);

// pip install's options (before "--" and the requirements) for `source` and `mode`.
std::vector<std::string> PipInstallOptions(const PackageSource& source, absl::string_view mode);

}  // namespace rc::worker
