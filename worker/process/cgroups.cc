#include "worker/process/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

constexpr int64_t kCpuPeriodUs = 100000;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `value` to an existing cgroup file. UNAVAILABLE naming it.
absl::Status WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::UnavailableError(absl::StrCat("cannot write '", value, "' to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

// The directory of `path` (this process's cgroup) inside `mount`, or "" when the mount
// does not reach it (a container that mounted a subtree that excludes it).
std::string Under(const CgroupMount& mount, const std::string& path) {
  if (mount.root == "/") return mount.mount_point + (path == "/" ? "" : path);
  if (path == mount.root) return mount.mount_point;
  if (absl::StartsWith(path, mount.root + "/")) return mount.mount_point + path.substr(mount.root.size());
  return "";
}

// Kills whatever is still in `dir` and removes it, retrying for up to a second while
// the killed processes go away.
void RemoveCgroup(const std::string& dir, int version) {
  const absl::Time give_up = absl::Now() + absl::Seconds(1);
  while (true) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY || absl::Now() >= give_up) break;
    if (version == 2 && WriteFile(dir + "/cgroup.kill", "1").ok()) {
      // The kernel kills every member (Linux 5.14 and later).
    } else {
      for (absl::string_view line : absl::StrSplit(ReadAll(dir + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
        int pid = 0;
        if (absl::SimpleAtoi(line, &pid) && pid > 0) kill(pid, SIGKILL);
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  spdlog::warn("cgroup {} could not be removed: {}", dir, std::strerror(errno));
}

}  // namespace

std::vector<std::string> WantedControllers(const CgroupLimits& limits) {
  std::vector<std::string> out;
  if (limits.memory_bytes > 0) out.push_back("memory");
  if (limits.pids_max > 0) out.push_back("pids");
  if (limits.cpu_percent > 0) out.push_back("cpu");
  return out;
}

CgroupMounts ParseMountInfo(absl::string_view mountinfo) {
  CgroupMounts out;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
    const absl::string_view fstype = dash[1], super = dash[3];
    CgroupMount mount{std::string(f[3]), std::string(f[4])};
    if (fstype == "cgroup2") {
      if (!out.v2.has_value()) out.v2 = mount;
    } else if (fstype == "cgroup") {
      for (absl::string_view option : absl::StrSplit(super, ',')) {
        // Mount flags, not controllers (v1 super options mix both).
        if (option == "rw" || option == "ro" || option == "xattr" || option == "noprefix" ||
            option == "clone_children" || option == "cpuset_v2_mode" || absl::StrContains(option, '=')) {
          continue;
        }
        out.v1.emplace(std::string(option), mount);  // the first mount of a hierarchy wins
      }
    }
  }
  return out;
}

std::map<std::string, std::string> ParseProcCgroup(absl::string_view text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    // "ID:CONTROLLERS:PATH"; the path may itself contain ':'.
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (f[0] == "0" && f[1].empty()) {
      out[""] = std::string(f[2]);
      continue;
    }
    for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
      if (!absl::StrContains(c, '=')) out[std::string(c)] = std::string(f[2]);
    }
  }
  return out;
}

CgroupPlan PlanCgroups(const std::vector<std::string>& wanted, const CgroupMounts& mounts,
                       const std::map<std::string, std::string>& proc_cgroup, absl::string_view v2_controllers) {
  CgroupPlan plan;
  const std::vector<absl::string_view> delegated = absl::StrSplit(v2_controllers, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  for (const std::string& c : wanted) {
    if (auto m = mounts.v1.find(c); m != mounts.v1.end()) {
      auto own = proc_cgroup.find(c);
      std::string dir = own == proc_cgroup.end() ? "" : Under(m->second, own->second);
      if (dir.empty()) {
        plan.missing.emplace_back(c, absl::StrCat("cgroup v1 mount ", m->second.mount_point,
                                                  " does not contain this process's cgroup"));
      } else {
        plan.sites.push_back({c, 1, dir});
      }
      continue;
    }
    auto own = proc_cgroup.find("");
    if (mounts.v2.has_value() && own != proc_cgroup.end()) {
      std::string dir = Under(*mounts.v2, own->second);
      if (dir.empty()) {
        plan.missing.emplace_back(c, absl::StrCat("cgroup v2 mount ", mounts.v2->mount_point,
                                                  " does not contain this process's cgroup"));
      } else if (std::find(delegated.begin(), delegated.end(), c) == delegated.end()) {
        plan.missing.emplace_back(c, absl::StrCat("not mounted as cgroup v1 and not delegated to cgroup v2 group ",
                                                  dir, " (its cgroup.controllers: '",
                                                  absl::StripAsciiWhitespace(v2_controllers), "')"));
      } else {
        plan.sites.push_back({c, 2, dir});
      }
      continue;
    }
    plan.missing.emplace_back(c, "no cgroup hierarchy (v1 or v2) is mounted for it");
  }
  return plan;
}

std::vector<std::pair<std::string, std::string>> LimitFiles(const std::string& controller, int version,
                                                            const CgroupLimits& limits) {
  if (controller == "memory" && limits.memory_bytes > 0) {
    return {{version == 2 ? "memory.max" : "memory.limit_in_bytes", absl::StrCat(limits.memory_bytes)}};
  }
  if (controller == "pids" && limits.pids_max > 0) return {{"pids.max", absl::StrCat(limits.pids_max)}};
  if (controller == "cpu" && limits.cpu_percent > 0) {
    const int64_t quota = kCpuPeriodUs * limits.cpu_percent / 100;
    if (version == 2) return {{"cpu.max", absl::StrCat(quota, " ", kCpuPeriodUs)}};
    return {{"cpu.cfs_period_us", absl::StrCat(kCpuPeriodUs)}, {"cpu.cfs_quota_us", absl::StrCat(quota)}};
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> NoSwapFiles(const std::string& controller, int version,
                                                             const CgroupLimits& limits) {
  if (controller != "memory" || limits.memory_bytes <= 0) return {};
  if (version == 2) return {{"memory.swap.max", "0"}};
  return {{"memory.memsw.limit_in_bytes", absl::StrCat(limits.memory_bytes)}};
}

TaskCgroup::~TaskCgroup() {
  for (int fd : procs_fds_) close(fd);
  for (size_t i = 0; i < dirs_.size(); ++i) RemoveCgroup(dirs_[i], versions_[i]);
}

CgroupSet CgroupSet::ForSites(std::vector<CgroupSite> sites, const CgroupLimits& limits) {
  CgroupSet set;
  set.limits_ = limits;
  set.sites_ = std::move(sites);
  return set;
}

CgroupSet CgroupSet::Detect(const CgroupLimits& limits) {
  const std::map<std::string, std::string> own = ParseProcCgroup(ReadAll("/proc/self/cgroup"));
  const CgroupMounts mounts = ParseMountInfo(ReadAll("/proc/self/mountinfo"));
  std::string v2_dir;
  if (mounts.v2.has_value() && own.count("") > 0) v2_dir = Under(*mounts.v2, own.at(""));
  const std::string v2_controllers = v2_dir.empty() ? "" : ReadAll(v2_dir + "/cgroup.controllers");
  CgroupPlan plan = PlanCgroups(WantedControllers(limits), mounts, own, v2_controllers);

  CgroupSet set;
  set.limits_ = limits;
  set.missing_ = std::move(plan.missing);
  // v2: task cgroups need the controllers enabled in the parent's subtree_control, which
  // a cgroup holding processes refuses (EBUSY); the worker then moves itself into a
  // leaf "worker" child first, as a delegated service is expected to.
  std::string v2_error;
  std::vector<std::string> v2_wanted;
  for (const CgroupSite& s : plan.sites) {
    if (s.version == 2) v2_wanted.push_back(s.controller);
  }
  if (!v2_wanted.empty()) {
    auto enable = [&] {
      absl::Status st;
      for (const std::string& c : v2_wanted) {
        if (st = WriteFile(v2_dir + "/cgroup.subtree_control", "+" + c); !st.ok()) return st;
      }
      return st;
    };
    absl::Status st = enable();
    if (!st.ok()) {
      const std::string leaf = v2_dir + "/worker";
      if (mkdir(leaf.c_str(), 0755) == 0 || errno == EEXIST) {
        if (WriteFile(leaf + "/cgroup.procs", "0").ok()) {
          spdlog::info("cgroups: moved the worker into {} so that task cgroups can use controllers", leaf);
          st = enable();
        }
      }
    }
    if (!st.ok()) v2_error = std::string(st.message());
  }
  // Every site is tried for real: make a probe cgroup, write its limits, remove it.
  const std::string probe_name = absl::StrCat("rc-probe-", getpid());
  for (const CgroupSite& s : plan.sites) {
    if (s.version == 2 && !v2_error.empty()) {
      set.missing_.emplace_back(s.controller, absl::StrCat("cannot enable it for child cgroups: ", v2_error));
      continue;
    }
    const std::string probe = s.dir + "/" + probe_name;
    absl::Status st;
    if (mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
      st = absl::UnavailableError(absl::StrCat("cannot create cgroups under ", s.dir, ": ", std::strerror(errno)));
    }
    for (const auto& [file, value] : LimitFiles(s.controller, s.version, limits)) {
      if (st.ok()) st = WriteFile(probe + "/" + file, value);
    }
    rmdir(probe.c_str());
    if (st.ok()) {
      set.sites_.push_back(s);
    } else {
      set.missing_.emplace_back(s.controller, std::string(st.message()));
    }
  }
  return set;
}

std::vector<std::string> CgroupSet::enforced() const {
  std::vector<std::string> out;
  for (const CgroupSite& s : sites_) out.push_back(s.controller);
  return out;
}

std::string CgroupSet::Describe() const {
  std::vector<std::string> used, missing, unset;
  for (const CgroupSite& s : sites_) used.push_back(absl::StrCat(s.controller, " (v", s.version, " ", s.dir, ")"));
  for (const auto& [c, why] : missing_) missing.push_back(absl::StrCat(c, " (", why, ")"));
  const std::vector<std::string> wanted = WantedControllers(limits_);
  for (const auto& [c, key] : {std::pair{"memory", "cgroup_memory_mb"}, {"pids", "cgroup_pids_max"},
                                {"cpu", "cgroup_cpu_percent"}}) {
    if (std::find(wanted.begin(), wanted.end(), c) == wanted.end()) unset.push_back(absl::StrCat(c, " (", key, ": 0)"));
  }
  std::string out = absl::StrCat("cgroups: enforcing ", used.empty() ? "none" : absl::StrJoin(used, ", "));
  if (!missing.empty()) absl::StrAppend(&out, "; MISSING (tasks run without these limits): ", absl::StrJoin(missing, "; "));
  if (!unset.empty()) absl::StrAppend(&out, "; no limit configured: ", absl::StrJoin(unset, ", "));
  return out;
}

absl::StatusOr<std::unique_ptr<TaskCgroup>> CgroupSet::Create(const std::string& name) const {
  if (sites_.empty()) return std::unique_ptr<TaskCgroup>();
  std::unique_ptr<TaskCgroup> cg(new TaskCgroup());
  // Sites that share a directory (all of v2) share the task's cgroup.
  std::map<std::string, std::vector<const CgroupSite*>> by_dir;
  for (const CgroupSite& s : sites_) by_dir[s.dir].push_back(&s);
  for (const auto& [parent, sites] : by_dir) {
    const std::string dir = parent + "/" + name;
    if (mkdir(dir.c_str(), 0755) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot create cgroup ", dir, ": ", std::strerror(errno)));
    }
    cg->dirs_.push_back(dir);
    cg->versions_.push_back(sites.front()->version);
    for (const CgroupSite* s : sites) {
      for (const auto& [file, value] : LimitFiles(s->controller, s->version, limits_)) {
        if (absl::Status st = WriteFile(dir + "/" + file, value); !st.ok()) return st;
      }
      for (const auto& [file, value] : NoSwapFiles(s->controller, s->version, limits_)) {
        WriteFile(dir + "/" + file, value).IgnoreError();
      }
    }
    int fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", dir, "/cgroup.procs: ", std::strerror(errno)));
    cg->procs_fds_.push_back(fd);
  }
  return cg;
}

}  // namespace rc::worker
