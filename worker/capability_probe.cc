#include "worker/capability_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

double RoundTo(double v, double step) { return static_cast<long long>(v / step + 0.5) * step; }

}  // namespace

std::string DetectPlatform() {
  struct utsname u;
  if (uname(&u) != 0) return "linux";
  std::string sys = absl::AsciiStrToLower(u.sysname);
  if (sys == "linux") {
    if (std::getenv("ANDROID_ROOT") != nullptr || std::filesystem::exists("/system/build.prop")) return "android";
    return "linux";
  }
  if (sys == "darwin") return "darwin";
  if (absl::StrContains(sys, "mingw") || absl::StrContains(sys, "cygwin") || absl::StrContains(sys, "windows")) {
    return "windows";
  }
  return sys;
}

std::string DetectGpu() {
  std::error_code ec;
  // NVIDIA's driver lists each GPU with a "Model:" line.
  for (const auto& dir : std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    std::ifstream in(dir.path() / "information");
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "Model:")) return std::string(absl::StripAsciiWhitespace(line.substr(6)));
    }
    return "NVIDIA GPU";
  }
  // Discrete GPUs by PCI vendor through DRM (AMD 0x1002, NVIDIA 0x10de).
  for (const auto& card : std::filesystem::directory_iterator("/sys/class/drm", ec)) {
    std::string vendor = ReadFirstLine((card.path() / "device" / "vendor").string());
    if (vendor == "0x10de") return "NVIDIA GPU";
    if (vendor == "0x1002") return "AMD GPU";
  }
  return "";
}

bool CanConnect(const std::string& address, int timeout_ms) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return false;
  bool ok = false;
  for (addrinfo* ai = res; ai != nullptr && !ok; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof(err);
      ok = poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    close(fd);
  }
  freeaddrinfo(res);
  return ok;
}

LoadInfo ReadLoad() {
  LoadInfo l;
  double avg[3] = {0, 0, 0};
  if (getloadavg(avg, 3) == 3) {
    l.load1 = avg[0];
    l.load5 = avg[1];
    l.load15 = avg[2];
  }
  std::ifstream in("/proc/meminfo");
  std::string key;
  long long kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      l.memory_available_gb = RoundTo(kb * 1024.0 / kGiB, 0.01);
      break;
    }
  }
  return l;
}

pb::Capabilities ProbeCapabilities(const WorkerConfig& config, const std::vector<std::string>& task_types,
                                   const Containment& containment) {
  pb::Capabilities c;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  c.set_hostname(host);
  c.set_device_id(config.device_id.empty() ? std::string(host) : config.device_id);
  c.set_platform(DetectPlatform());
  struct utsname u;
  if (uname(&u) == 0) c.set_arch(u.machine);
  c.set_role(config.role);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  c.set_cpu_cores(cores > 0 ? static_cast<int>(cores) : 1);
  c.set_memory_gb(RoundTo(static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / kGiB, 0.01));
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  struct statvfs fs;
  if (statvfs(config.data_dir.c_str(), &fs) == 0) {
    c.set_storage_gb(RoundTo(static_cast<double>(fs.f_bavail) * fs.f_frsize / kGiB, 0.01));
  } else {
    spdlog::warn("cannot measure free disk under {}: reporting 0 GB", config.data_dir);
  }
  std::string gpu = DetectGpu();
  c.set_gpu(!gpu.empty());
  c.set_gpu_name(gpu);
  c.set_internet(config.internet_check.empty() ? config.internet : CanConnect(config.internet_check, 2000));
  for (const std::string& t : config.tags) c.add_tags(t);
  for (const std::string& t : task_types) c.add_task_types(t);
  for (const std::string& s : config.accept_submitters) c.add_accepted_submitters(s);
  c.set_slots(config.slots > 0 ? config.slots : c.cpu_cores());
  c.set_version(RC_VERSION);
  c.set_containment(containment.tier());
  for (const std::string& limit : containment.cgroup_limits()) c.add_cgroup_limits(limit);
  return c;
}

}  // namespace rc::worker
