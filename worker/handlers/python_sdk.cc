#include "worker/handlers/python_sdk.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/handlers/bundled_dir.h"

namespace rc::worker {
namespace fs = std::filesystem;

const std::vector<std::string>& RequiredSdkFiles() {
  static const std::vector<std::string> files = {"retire_cluster/__init__.py",
                                                 "retire_cluster/v1/client_service_pb2_grpc.py"};
  return files;
}

absl::StatusOr<PythonSdk> ChoosePythonSdk(const std::optional<std::string>& configured, const std::string& binary,
                                          const MissingSdkFiles& missing) {
  static const BundledDirRule rule{"python_sdk_dir",
                                   " (the directory holding retire_cluster/; its stubs come from the build's "
                                   "python_sdk target or /usr/bin/python3 python/gen_stubs.py)",
                                   {{"../../python", "build tree"}, {"../share/retire-cluster/python", "installed"}}};
  absl::StatusOr<BundledDir> d = ChooseBundledDir(rule, configured, binary, missing);
  if (!d.ok()) return d.status();
  return PythonSdk{std::move(d->dir), std::move(d->how)};
}

std::vector<std::string> MissingSdkFilesOnDisk(const std::string& dir) {
  return MissingFilesOnDisk(dir, RequiredSdkFiles());
}

std::string WorkerBinaryPath() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.string();
}

}  // namespace rc::worker
