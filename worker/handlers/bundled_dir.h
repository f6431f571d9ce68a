#pragma once
// Directories the worker ships beside its binary for task handlers (the Python SDK of
// python_script, the js engine host): found from an option, or beside the worker's own
// executable (a build tree, then an install), and checked for the files that make them.
// Pure: the disk is read only through the injected probe, so every branch is unit-tested.

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace rc::worker {

// Which of the required files `dir` lacks (relative names, in order); empty when it has all.
using MissingFiles = std::function<std::vector<std::string>(const std::string& dir)>;

struct BundledDir {
  std::string dir;  // absolute; "" when there is none
  // How it was chosen: "configured", the candidate's name ("build tree", "installed"),
  // "off (OPTION is \"\")", or "not found (...)" naming what was looked at and what it lacks.
  std::string how;
};

struct BundledDirRule {
  std::string option;  // "js_engine_dir": errors and `how` name it
  std::string hint;    // appended to "OPTION: DIR lacks FILE, ...": " (where it comes from)"
  // Candidates relative to the binary's directory, tried in order, each with its `how`.
  std::vector<std::pair<std::string, std::string>> beside_binary;
};

// nullopt looks beside `binary` (absolute; the first candidate holding every file wins);
// "" turns it off; any other value must be absolute and hold the files, else
// INVALID_ARGUMENT "OPTION: ...".
absl::StatusOr<BundledDir> ChooseBundledDir(const BundledDirRule& rule, const std::optional<std::string>& configured,
                                            const std::string& binary, const MissingFiles& missing);

// The probe on the real filesystem: a file is there when it is a readable regular file
// (symlinks followed).
std::vector<std::string> MissingFilesOnDisk(const std::string& dir, const std::vector<std::string>& files);

}  // namespace rc::worker
