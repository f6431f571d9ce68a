#include "worker/handlers/python_sdk.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rc::worker {
namespace fs = std::filesystem;

const std::vector<std::string>& RequiredSdkFiles() {
  static const std::vector<std::string> files = {"retire_cluster/__init__.py",
                                                 "retire_cluster/v1/client_service_pb2_grpc.py"};
  return files;
}

absl::StatusOr<PythonSdk> ChoosePythonSdk(const std::optional<std::string>& configured, const std::string& binary,
                                          const MissingSdkFiles& missing) {
  if (configured.has_value()) {
    if (configured->empty()) return PythonSdk{"", "off (python_sdk_dir is \"\")"};
    const fs::path dir = fs::path(*configured).lexically_normal();
    if (!dir.is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat("python_sdk_dir: '", *configured, "' is not an absolute path"));
    }
    std::string d = dir.string();
    if (d.size() > 1 && d.back() == '/') d.pop_back();
    if (std::vector<std::string> lacks = missing(d); !lacks.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "python_sdk_dir: ", d, " lacks ", absl::StrJoin(lacks, ", "),
          " (the directory holding retire_cluster/; its stubs come from the build's python_sdk target or "
          "/usr/bin/python3 python/gen_stubs.py)"));
    }
    return PythonSdk{d, "configured"};
  }
  if (binary.empty() || !fs::path(binary).is_absolute()) {
    return PythonSdk{"", "not found (the worker's own path is unknown; set python_sdk_dir)"};
  }
  const fs::path bin_dir = fs::path(binary).parent_path();
  const std::pair<fs::path, const char*> candidates[] = {
      {bin_dir / ".." / ".." / "python", "build tree"},
      {bin_dir / ".." / "share" / "retire-cluster" / "python", "installed"},
  };
  std::vector<std::string> looked;
  for (const auto& [path, how] : candidates) {
    const std::string d = path.lexically_normal().string();
    std::vector<std::string> lacks = missing(d);
    if (lacks.empty()) return PythonSdk{d, how};
    looked.push_back(absl::StrCat(d, " lacks ", absl::StrJoin(lacks, ", ")));
  }
  return PythonSdk{"", absl::StrCat("not found (", absl::StrJoin(looked, "; "), ")")};
}

std::vector<std::string> MissingSdkFilesOnDisk(const std::string& dir) {
  std::vector<std::string> lacks;
  for (const std::string& f : RequiredSdkFiles()) {
    const fs::path p = fs::path(dir) / f;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec) || access(p.c_str(), R_OK) != 0) lacks.push_back(f);
  }
  return lacks;
}

std::string WorkerBinaryPath() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.string();
}

}  // namespace rc::worker
