#pragma once
// What a process group uses now, read from /proc (Linux). Every task process runs in its
// own process group (process_runner.h: the child calls setsid, so its pgid is its pid, and
// everything it starts stays in the group unless it leaves on purpose; bwrap keeps it too,
// containment.h), and so does a Chromium with all its renderers: one group is "the task".
//
// The parsing and arithmetic are pure functions over text; reading /proc is separate and
// takes the /proc directory as a parameter, so tests use a fake one.
//
// Design assumptions: CPU time is utime + stime of every live process in the group plus
// cutime + cstime (children they waited for), so a child that exits and is reaped inside
// the group keeps its time; a process that leaves the group, or a child reaped outside it,
// takes its time along (cpu_seconds may then drop: CpuPercent never goes below 0). Memory is
// the sum of RSS, which counts pages shared between the group's processes once per process
// (an overestimate for multi-process programs such as Chromium; PSS would need
// smaps_rollup, which costs a page-table walk per process and ptrace access).

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rc::worker {

// The fields of one /proc/<pid>/stat line that sampling needs (proc(5)).
struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // may hold spaces and ')' (the executable's name, up to 15 bytes)
  char state = '?';  // R, S, D, Z, ...
  pid_t ppid = 0;
  pid_t pgrp = 0;
  uint64_t utime_ticks = 0;   // user time, clock ticks
  uint64_t stime_ticks = 0;   // system time
  uint64_t cutime_ticks = 0;  // of waited-for children
  uint64_t cstime_ticks = 0;
  uint64_t start_ticks = 0;   // since boot
  int64_t rss_pages = 0;
};

// The kernel's units for the numbers in stat: sysconf(_SC_CLK_TCK) and the page size.
struct ProcUnits {
  int64_t ticks_per_second = 100;
  int64_t page_size = 4096;
  static ProcUnits Host();
};

// What a process group uses now.
struct GroupUsage {
  int processes = 0;
  double cpu_seconds = 0;        // user + system, children waited for included
  int64_t memory_bytes = 0;      // sum of RSS
  int64_t largest_rss_bytes = 0;  // of its largest process
};

// Parses the text of /proc/<pid>/stat. The command name is the text between the first '('
// and the LAST ')', since it may itself hold ") (" and spaces. INVALID_ARGUMENT naming
// what is missing or malformed. Pure.
absl::StatusOr<ProcStat> ParseProcStat(absl::string_view text);

// Adds one process to a group's usage. Pure.
void AddToGroup(const ProcStat& stat, const ProcUnits& units, GroupUsage* group);

// CPU used between two samples as a percentage of one core (200 = two cores busy all the
// time): 0 when the interval is not positive or the CPU time dropped (processes left).
// Pure.
double CpuPercent(double prev_cpu_seconds, double now_cpu_seconds, absl::Time prev_time, absl::Time now_time);

// Reading /proc scans every process once (there is no index by group), so it is bounded:
// past this many numeric entries the scan stops with RESOURCE_EXHAUSTED.
inline constexpr int kMaxProcEntries = 1 << 16;

// The usage of each group in `pgids`, from one scan of `proc_root`. A group with no live
// process is absent from the result. Processes that vanish during the scan are skipped.
// FAILED_PRECONDITION when `proc_root` cannot be listed; RESOURCE_EXHAUSTED past
// kMaxProcEntries processes.
absl::StatusOr<absl::flat_hash_map<pid_t, GroupUsage>> SampleProcessGroups(
    const std::vector<pid_t>& pgids, const std::string& proc_root = "/proc",
    const ProcUnits& units = ProcUnits::Host());

// One group: as above, NOT_FOUND when no process of `pgid` is alive (it ended).
absl::StatusOr<GroupUsage> SampleProcessGroup(pid_t pgid, const std::string& proc_root = "/proc");

}  // namespace rc::worker
