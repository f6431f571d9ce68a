#include "worker/handlers/bundled_dir.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rc::worker {
namespace fs = std::filesystem;

absl::StatusOr<BundledDir> ChooseBundledDir(const BundledDirRule& rule, const std::optional<std::string>& configured,
                                            const std::string& binary, const MissingFiles& missing) {
  if (configured.has_value()) {
    if (configured->empty()) return BundledDir{"", absl::StrCat("off (", rule.option, " is \"\")")};
    const fs::path dir = fs::path(*configured).lexically_normal();
    if (!dir.is_absolute()) {
      return absl::InvalidArgumentError(
          absl::StrCat(rule.option, ": '", *configured, "' is not an absolute path"));
    }
    std::string d = dir.string();
    if (d.size() > 1 && d.back() == '/') d.pop_back();
    if (std::vector<std::string> lacks = missing(d); !lacks.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(rule.option, ": ", d, " lacks ", absl::StrJoin(lacks, ", "), rule.hint));
    }
    return BundledDir{d, "configured"};
  }
  if (binary.empty() || !fs::path(binary).is_absolute()) {
    return BundledDir{"", absl::StrCat("not found (the worker's own path is unknown; set ", rule.option, ")")};
  }
  const fs::path bin_dir = fs::path(binary).parent_path();
  std::vector<std::string> looked;
  for (const auto& [relative, how] : rule.beside_binary) {
    const std::string d = (bin_dir / relative).lexically_normal().string();
    std::vector<std::string> lacks = missing(d);
    if (lacks.empty()) return BundledDir{d, how};
    looked.push_back(absl::StrCat(d, " lacks ", absl::StrJoin(lacks, ", ")));
  }
  return BundledDir{"", absl::StrCat("not found (", absl::StrJoin(looked, "; "), ")")};
}

std::vector<std::string> MissingFilesOnDisk(const std::string& dir, const std::vector<std::string>& files) {
  std::vector<std::string> lacks;
  for (const std::string& f : files) {
    const fs::path p = fs::path(dir) / f;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec) || access(p.c_str(), R_OK) != 0) lacks.push_back(f);
  }
  return lacks;
}

}  // namespace rc::worker
