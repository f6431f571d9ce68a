#pragma once
// Where the JavaScript engine host (worker/js: host.js and its node_modules) is on this
// worker, and which node runs it, for `js` tasks (DESIGN.md "JavaScript tasks").
//
// Design assumption: the engine is built into the build tree (build/worker/js, target
// js_engine) or installed under a prefix (share/retire-cluster/js), beside the worker
// binary; it is found once at start-up. As for the Python SDK (python_sdk.h), the choice is
// a pure function of the configuration, the binary's path and a filesystem probe
// (injected). Unlike the SDK, `js` cannot run without it: a worker allowing `js` without
// an engine or a node >= 18 refuses to start (MakeJsHandler), saying how to get them.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rc::worker {

// The files that make a directory the engine host: the host itself and the two pinned
// packages it loads (worker/js/package.json; installed by the build's `npm ci`).
const std::vector<std::string>& RequiredEngineFiles();

// Which of RequiredEngineFiles() `dir` lacks (relative names, in that order); empty when
// it holds them all.
using MissingEngineFiles = std::function<std::vector<std::string>(const std::string& dir)>;

struct JsEngineDir {
  std::string dir;  // absolute; "" when there is none
  // How it was chosen: "configured", "build tree", "installed", "off (js_engine_dir is
  // \"\")", or "not found (...)" naming what was looked at and what it lacks.
  std::string how;
};

// Chooses the engine directory. `configured` is WorkerConfig.js_engine_dir: nullopt looks
// beside `binary` (the worker's own executable, absolute): `<binary dir>/js` (the build
// tree: build/worker/retire-cluster-worker beside build/worker/js), then
// `<binary dir>/../share/retire-cluster/js` (an install); the first holding every
// RequiredEngineFiles() wins. "" turns it off. Anything else must hold them:
// INVALID_ARGUMENT "js_engine_dir: DIR lacks FILE, ..." otherwise, or for a relative path.
// Pure: the disk is read only through `missing`.
absl::StatusOr<JsEngineDir> ChooseJsEngineDir(const std::optional<std::string>& configured, const std::string& binary,
                                              const MissingEngineFiles& missing);

// The probe on the real filesystem: a required file is there when it is a readable
// regular file (symlinks followed).
std::vector<std::string> MissingEngineFilesOnDisk(const std::string& dir);

// What `node --version` printed ("v18.20.4\n") as {major, minor, patch}. INVALID_ARGUMENT
// quoting the text when it is not that shape. Pure.
struct NodeVersion {
  int major = 0, minor = 0, patch = 0;
};
absl::StatusOr<NodeVersion> ParseNodeVersion(absl::string_view text);

// The oldest node the engine runs on (quickjs-emscripten 0.32 is tested with 18).
constexpr int kMinNodeMajor = 18;

// Where node is and which version, for the start-up log.
struct NodeProgram {
  std::string path;
  std::string version;  // "v18.20.4"
};
// Runs `path --version` and returns what it printed (the worker's probe; injected in tests).
using NodeVersionProbe = std::function<absl::StatusOr<std::string>(const std::string& path)>;

// The node `js` tasks run on: `node` on `search_path` (the worker uses
// /usr/local/bin:/usr/bin:/bin, as task processes do), found with `find` (FindProgram),
// asked its version once. FAILED_PRECONDITION naming what is missing and how to install
// it: no node, a version that cannot be read, or one older than kMinNodeMajor.
absl::StatusOr<NodeProgram> FindJsNode(const std::string& search_path,
                                       const std::function<std::string(const std::string& name,
                                                                       const std::string& path)>& find,
                                       const NodeVersionProbe& probe);

// The real probe: `path --version` with a 10 s limit.
absl::StatusOr<std::string> NodeVersionOnDisk(const std::string& path);

}  // namespace rc::worker
