// The disk half of the floor: 4 KiB writes made durable with fdatasync, as the durable
// store's commit does, in the directory the store would use.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/bench_runs.h"
#include "bench/floor.h"

namespace rc::bench {
namespace {

constexpr size_t kBlock = 4096;
constexpr int kOverwriteBlocks = 64;  // the reused region: 256 KiB, like a small WAL

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool Under(const std::string& path, const std::string& mount) {
  if (mount == "/") return true;
  return path == mount || (path.size() > mount.size() && path.compare(0, mount.size(), mount) == 0 &&
                           path[mount.size()] == '/');
}

// Fills the mount point, type and source of the filesystem holding `real_dir`: the longest
// mount point above it in /proc/self/mountinfo. Left empty when it cannot be read.
void FindMount(const std::string& real_dir, DiskFloor* out) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  size_t best = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (f.size() < 5 || dash == 0 || dash + 2 >= f.size()) continue;
    const std::string mount = Unescape(f[4]);
    if (Under(real_dir, mount) && mount.size() >= best) {  // later lines over-mount earlier ones
      best = mount.size();
      out->mount = mount;
      out->fs_type = f[dash + 1];
      out->device = Unescape(f[dash + 2]);
    }
  }
}

// Closes and removes the scratch file whatever happens.
struct ScratchFile {
  int fd = -1;
  std::string path;
  ~ScratchFile() {
    if (fd >= 0) close(fd);
    if (!path.empty()) unlink(path.c_str());
  }
};

absl::Status WriteSync(int fd, const char* block, off_t offset, const std::string& path) {
  if (pwrite(fd, block, kBlock, offset) != static_cast<ssize_t>(kBlock)) {
    return absl::InternalError(absl::StrCat("write ", path, ": ", std::strerror(errno)));
  }
  if (fdatasync(fd) != 0) return absl::InternalError(absl::StrCat("fdatasync ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

Quantiles QuantilesOf(std::vector<double>& samples) {
  return Quantiles{Percentile(samples, 0.5), Percentile(samples, 0.9), Percentile(samples, 0.99),
                   Percentile(samples, 1.0)};
}

absl::StatusOr<DiskFloor> MeasureDisk(const std::string& dir, int samples, int warmup, absl::Duration idle_gap) {
  char real[PATH_MAX];
  if (realpath(dir.c_str(), real) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--data-dir ", dir, ": ", std::strerror(errno)));
  }
  DiskFloor d;
  ScratchFile file;
  file.path = absl::StrCat(real, "/.rc-bench-floor-", getpid());
  file.fd = open(file.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (file.fd < 0) {
    const std::string why = std::strerror(errno);
    file.path.clear();  // not ours to remove
    return absl::InvalidArgumentError(absl::StrCat("cannot create a file in --data-dir ", real, ": ", why));
  }
  d.path = file.path;
  FindMount(real, &d);
  std::string block(kBlock, 'f');
  // The reused region exists and is on disk before the first timed overwrite.
  for (int i = 0; i < kOverwriteBlocks; ++i) {
    if (pwrite(file.fd, block.data(), kBlock, static_cast<off_t>(i * kBlock)) != static_cast<ssize_t>(kBlock)) {
      return absl::InternalError(absl::StrCat("write ", file.path, ": ", std::strerror(errno)));
    }
  }
  if (fsync(file.fd) != 0) return absl::InternalError(absl::StrCat("fsync ", file.path, ": ", std::strerror(errno)));
  // Overwrites, back to back, then each after an idle gap.
  auto overwrites = [&](absl::Duration gap) -> absl::StatusOr<std::vector<double>> {
    std::vector<double> ms;
    ms.reserve(static_cast<size_t>(samples));
    for (int i = 0; i < warmup + samples; ++i) {
      block[0] = static_cast<char>('a' + i % 26);  // new content every time
      if (gap > absl::ZeroDuration()) absl::SleepFor(gap);
      const absl::Time t0 = absl::Now();
      if (absl::Status s = WriteSync(file.fd, block.data(), static_cast<off_t>((i % kOverwriteBlocks) * kBlock), file.path);
          !s.ok()) {
        return s;
      }
      if (i >= warmup) ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    }
    return ms;
  };
  auto overwrite = overwrites(absl::ZeroDuration());
  if (!overwrite.ok()) return overwrite.status();
  auto after_idle = overwrites(idle_gap);
  if (!after_idle.ok()) return after_idle.status();
  std::vector<double> append;
  append.reserve(static_cast<size_t>(samples));
  for (int i = 0; i < warmup + samples; ++i) {
    const absl::Time t0 = absl::Now();
    if (absl::Status s = WriteSync(file.fd, block.data(), static_cast<off_t>((kOverwriteBlocks + i) * kBlock), file.path);
        !s.ok()) {
      return s;
    }
    if (i >= warmup) append.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  d.overwrite_ms = QuantilesOf(*overwrite);
  d.after_idle_ms = QuantilesOf(*after_idle);
  d.idle_gap_ms = absl::ToDoubleMilliseconds(idle_gap);
  d.append_ms = QuantilesOf(append);
  return d;
}

}  // namespace rc::bench
