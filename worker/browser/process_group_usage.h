#pragma once
// CPU time and resident memory of a whole process group, read from /proc. A browser is a
// tree of processes (browser, zygote, renderers, GPU and utility processes) that all stay
// in the launcher's process group, so the group is what "the browser's usage" means.
//
// NOTE for the lead: H3 writes a generic process-group sampler
// (worker/process/process_sampler.{h,cc}) at the same time; this file is the pool's own
// small copy of the /proc parsing, to be replaced by H3's once both are merged.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rc::worker {
// H6 (integration branch only): an inline namespace so that these symbols do not clash with
// H3's process_sampler (same names) until the lead replaces this file with it.
inline namespace pool_usage {

// The fields of /proc/<pid>/stat the pool uses.
struct ProcStat {
  int pid = 0;
  int pgrp = 0;
  uint64_t cpu_ticks = 0;  // utime + stime, in clock ticks
  int64_t rss_pages = 0;
};

// Parses the text of /proc/<pid>/stat ("PID (COMM) STATE PPID PGRP ..."); COMM may hold
// spaces and parentheses, so the fields are counted from the last ')'. nullopt when the
// text is malformed. Pure.
std::optional<ProcStat> ParseProcStat(absl::string_view text);

struct GroupUsage {
  int processes = 0;
  double cpu_seconds = 0;  // user + system of the group's live processes
  int64_t rss_bytes = 0;
};

// Sums every process under `proc_root` whose process group is `pgid`. Processes that
// vanish while it reads are skipped.
GroupUsage SampleProcessGroup(int pgid, const std::string& proc_root = "/proc");

// CPU use between two samples, 100 = one core busy all of `elapsed`; 0 when no time
// passed or the group's total went down (processes that exited take their time with
// them). Pure.
double CpuPercent(double cpu_seconds_before, double cpu_seconds_now, absl::Duration elapsed);

}  // namespace pool_usage
}  // namespace rc::worker
