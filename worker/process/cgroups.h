#pragma once
// Per-task cgroups: memory, pids and CPU limits for everything one attempt starts,
// where the machine lets this worker use those controllers.
//
// Design assumption: the worker never owns the cgroup tree. It finds the cgroup it was
// started in (v2: the unified hierarchy; v1: one hierarchy per controller), checks at
// startup that it may create children there, and makes one child per attempt, which the
// task's process joins between fork and exec (so nothing it starts is ever outside).
// A controller that is not mounted, not delegated or not writable is reported and left
// out; it never stops the worker. Parsing and planning are pure functions below; the
// I/O lives in CgroupSet and TaskCgroup.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rc::worker {

// What each task gets; 0 = no limit (the controller is then not used at all).
struct CgroupLimits {
  int64_t memory_bytes = 0;
  int64_t pids_max = 0;
  int cpu_percent = 0;  // 100 = one core
};

// The controllers a limit needs, in a fixed order: "memory", "pids", "cpu".
std::vector<std::string> WantedControllers(const CgroupLimits& limits);

// ---- pure parsing and planning ----

// cgroup mounts from /proc/self/mountinfo.
struct CgroupMount {
  std::string root;         // the mount's root inside its hierarchy (field 4), e.g. "/"
  std::string mount_point;  // e.g. /sys/fs/cgroup/pids
};
struct CgroupMounts {
  std::map<std::string, CgroupMount> v1;  // controller -> mount (co-mounted ones share it)
  std::optional<CgroupMount> v2;
};
CgroupMounts ParseMountInfo(absl::string_view mountinfo);

// /proc/self/cgroup: controller -> path of this process's cgroup in that hierarchy;
// key "" is the v2 (unified) path ("0::/path"). Named hierarchies (name=systemd) are skipped.
std::map<std::string, std::string> ParseProcCgroup(absl::string_view text);

// Where one controller would be used: the directory of the worker's own cgroup in that
// hierarchy, under which per-task cgroups are made.
struct CgroupSite {
  std::string controller;
  int version = 0;  // 1 or 2
  std::string dir;
};
struct CgroupPlan {
  std::vector<CgroupSite> sites;
  std::vector<std::pair<std::string, std::string>> missing;  // controller, why
};
// Decides, for each wanted controller, where it lives: a v1 hierarchy mounting it (the
// worker's cgroup must lie under the mount's root), else the v2 hierarchy if the
// worker's v2 cgroup lists it in `v2_controllers` (the text of its cgroup.controllers).
CgroupPlan PlanCgroups(const std::vector<std::string>& wanted, const CgroupMounts& mounts,
                       const std::map<std::string, std::string>& proc_cgroup, absl::string_view v2_controllers);

// The files (name, value) that set `controller`'s limit in a cgroup of `version`, e.g.
// v2 pids -> {"pids.max", "64"}; v1 cpu -> cfs period and quota. Empty when no limit.
std::vector<std::pair<std::string, std::string>> LimitFiles(const std::string& controller, int version,
                                                            const CgroupLimits& limits);

// Written after LimitFiles where the file exists, ignoring failure: keeps the memory
// limit from being met by swapping (v2 memory.swap.max 0; v1 memory.memsw.limit_in_bytes,
// present only with swap accounting).
std::vector<std::pair<std::string, std::string>> NoSwapFiles(const std::string& controller, int version,
                                                             const CgroupLimits& limits);

// ---- mechanism ----

// One attempt's cgroups (one per site, the same for v2); removed, with anything still
// in them killed, when this object goes away.
class TaskCgroup {
 public:
  ~TaskCgroup();
  TaskCgroup(const TaskCgroup&) = delete;
  TaskCgroup& operator=(const TaskCgroup&) = delete;
  // Open (close-on-exec) cgroup.procs files: the child writes "0" into each to join.
  const std::vector<int>& procs_fds() const { return procs_fds_; }
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  friend class CgroupSet;
  TaskCgroup() = default;
  std::vector<std::string> dirs_;
  std::vector<int> procs_fds_;
  std::vector<int> versions_;
};

// The controllers this worker enforces, found once at startup. Thread-safe (immutable).
class CgroupSet {
 public:
  // Reads /proc/self/mountinfo and /proc/self/cgroup, then checks each planned site by
  // making and removing a probe cgroup (v2: enabling the controllers for children first,
  // moving the worker into a leaf "worker" cgroup when its own cgroup holds processes).
  // Never fails: what cannot be used is in missing().
  static CgroupSet Detect(const CgroupLimits& limits);
  // For tests: the given sites, used as they are (no probing).
  static CgroupSet ForSites(std::vector<CgroupSite> sites, const CgroupLimits& limits);

  // Controllers enforced per task, e.g. {"pids"}.
  std::vector<std::string> enforced() const;
  const std::vector<std::pair<std::string, std::string>>& missing() const { return missing_; }
  // One line for the startup log: what is used, where, and what is missing and why.
  std::string Describe() const;

  // A new cgroup for one attempt, limits written. nullptr (and OK) when nothing is
  // enforced. UNAVAILABLE naming the directory or file that could not be made or written.
  absl::StatusOr<std::unique_ptr<TaskCgroup>> Create(const std::string& name) const;

 private:
  CgroupLimits limits_;
  std::vector<CgroupSite> sites_;
  std::vector<std::pair<std::string, std::string>> missing_;
};

}  // namespace rc::worker
