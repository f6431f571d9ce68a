#pragma once
// Where the Python SDK (python/retire_cluster) is on this worker, so that python_script
// tasks can `import retire_cluster` without naming it in their requirements (DESIGN.md
// "Python SDK", "Workflows": a task submits children through RETIRE_CLUSTER_COORDINATOR).
//
// Design assumption: the SDK is plain source beside the worker binary (the build tree's
// python/, or an install's share/retire-cluster/python), found once at start-up. The choice
// is a pure function of the configuration, the binary's path and a filesystem probe
// (injected), so that every branch is unit-tested without touching the disk. An SDK the
// operator named and that is not usable stops the worker; one merely not found beside
// the binary only turns the feature off (a worker without python_script does not care).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rc::worker {

// The files that make a directory the SDK: the package, and the stubs the build
// generates (python/CMakeLists.txt, target python_sdk; or python/gen_stubs.py).
const std::vector<std::string>& RequiredSdkFiles();

// Which of RequiredSdkFiles() `dir` lacks (relative names, in that order); empty when
// it holds them all. The probe FindPythonSdk is given.
using MissingSdkFiles = std::function<std::vector<std::string>(const std::string& dir)>;

struct PythonSdk {
  std::string dir;  // absolute; "" when python_script tasks get no SDK
  // How it was chosen, for the start-up log: "configured", "build tree", "installed",
  // "off (python_sdk_dir is \"\")", or "not found (...)" naming what was looked at.
  std::string how;
};

// Chooses the SDK directory. `configured` is WorkerConfig.python_sdk_dir: nullopt looks
// beside `binary` (the worker's own executable, absolute): `<binary dir>/../../python`
// (the build tree: build/worker/retire-cluster-worker), then
// `<binary dir>/../share/retire-cluster/python` (an install under a prefix); the first
// holding every RequiredSdkFiles() wins. "" turns the SDK off. Anything else must hold
// them: INVALID_ARGUMENT "python_sdk_dir: DIR lacks FILE, ..." otherwise. A relative
// configured dir is refused too (LoadWorkerConfig makes it absolute). Pure: the disk is
// read only through `missing`.
absl::StatusOr<PythonSdk> ChoosePythonSdk(const std::optional<std::string>& configured, const std::string& binary,
                                          const MissingSdkFiles& missing);

// The probe on the real filesystem: a required file is there when it is a regular file
// (symlinks followed) that can be read.
std::vector<std::string> MissingSdkFilesOnDisk(const std::string& dir);

// The worker's own executable (/proc/self/exe); "" when it cannot be read.
std::string WorkerBinaryPath();

}  // namespace rc::worker
