#include "worker/process/process_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rc::worker {
namespace {

// Fields after the command name, counted from 0 = field 3 of proc(5) (state).
constexpr size_t kState = 0, kPpid = 1, kPgrp = 2, kUtime = 11, kStime = 12, kCutime = 13, kCstime = 14,
                 kStart = 19, kRss = 21;

template <typename T>
bool ParseField(const std::vector<absl::string_view>& fields, size_t i, T* out) {
  return i < fields.size() && absl::SimpleAtoi(fields[i], out);
}

// The stat text of one process; false when it vanished or cannot be read.
bool ReadSmallFile(const std::string& path, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];  // a stat line is a few hundred bytes
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

}  // namespace

ProcUnits ProcUnits::Host() {
  ProcUnits u;
  if (long t = sysconf(_SC_CLK_TCK); t > 0) u.ticks_per_second = t;
  if (long p = sysconf(_SC_PAGESIZE); p > 0) u.page_size = p;
  return u;
}

absl::StatusOr<ProcStat> ParseProcStat(absl::string_view text) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) {
    return absl::InvalidArgumentError("stat: no command name in parentheses");
  }
  ProcStat s;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text.substr(0, open)), &s.pid) || s.pid <= 0) {
    return absl::InvalidArgumentError("stat: no pid before the command name");
  }
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(text.substr(close + 1)), ' ', absl::SkipEmpty());
  if (fields.size() <= kRss) {
    return absl::InvalidArgumentError(
        absl::StrCat("stat: ", fields.size() + 2, " fields, need at least ", kRss + 3, " (through rss)"));
  }
  if (fields[kState].size() != 1) return absl::InvalidArgumentError("stat: field 3 (state) is not one letter");
  s.state = fields[kState][0];
  int64_t cutime = 0, cstime = 0;
  struct Named {
    bool ok;
    const char* name;
  };
  for (const Named& f : {Named{ParseField(fields, kPpid, &s.ppid), "4 (ppid)"},
                         Named{ParseField(fields, kPgrp, &s.pgrp), "5 (pgrp)"},
                         Named{ParseField(fields, kUtime, &s.utime_ticks), "14 (utime)"},
                         Named{ParseField(fields, kStime, &s.stime_ticks), "15 (stime)"},
                         Named{ParseField(fields, kCutime, &cutime), "16 (cutime)"},
                         Named{ParseField(fields, kCstime, &cstime), "17 (cstime)"},
                         Named{ParseField(fields, kStart, &s.start_ticks), "22 (starttime)"},
                         Named{ParseField(fields, kRss, &s.rss_pages), "24 (rss)"}}) {
    if (!f.ok) return absl::InvalidArgumentError(absl::StrCat("stat: field ", f.name, " is not a number"));
  }
  // Signed in the kernel's format; never negative in practice.
  s.cutime_ticks = static_cast<uint64_t>(std::max<int64_t>(cutime, 0));
  s.cstime_ticks = static_cast<uint64_t>(std::max<int64_t>(cstime, 0));
  s.rss_pages = std::max<int64_t>(s.rss_pages, 0);
  return s;
}

void AddToGroup(const ProcStat& s, const ProcUnits& units, GroupUsage* g) {
  const uint64_t ticks = s.utime_ticks + s.stime_ticks + s.cutime_ticks + s.cstime_ticks;
  const int64_t rss = s.rss_pages * units.page_size;
  g->processes += 1;
  g->cpu_seconds += static_cast<double>(ticks) / static_cast<double>(std::max<int64_t>(units.ticks_per_second, 1));
  g->memory_bytes += rss;
  g->largest_rss_bytes = std::max(g->largest_rss_bytes, rss);
}

double CpuPercent(double prev_cpu_seconds, double now_cpu_seconds, absl::Time prev_time, absl::Time now_time) {
  const double interval = absl::ToDoubleSeconds(now_time - prev_time);
  if (!(interval > 0) || !(now_cpu_seconds > prev_cpu_seconds)) return 0;
  return 100.0 * (now_cpu_seconds - prev_cpu_seconds) / interval;
}

absl::StatusOr<absl::flat_hash_map<pid_t, GroupUsage>> SampleProcessGroups(const std::vector<pid_t>& pgids,
                                                                            const std::string& proc_root,
                                                                            const ProcUnits& units) {
  absl::flat_hash_map<pid_t, GroupUsage> out;
  if (pgids.empty()) return out;
  const absl::flat_hash_set<pid_t> wanted(pgids.begin(), pgids.end());
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot list ", proc_root, ": ", std::strerror(errno)));
  }
  int entries = 0;
  std::string text;
  absl::Status status;
  while (dirent* d = readdir(dir)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(d->d_name, &pid) || pid <= 0) continue;  // "self", "meminfo", ...
    if (++entries > kMaxProcEntries) {
      status = absl::ResourceExhaustedError(
          absl::StrCat(proc_root, " lists more than ", kMaxProcEntries, " processes; not sampled"));
      break;
    }
    if (!ReadSmallFile(absl::StrCat(proc_root, "/", d->d_name, "/stat"), &text)) continue;  // it ended meanwhile
    absl::StatusOr<ProcStat> stat = ParseProcStat(text);
    if (!stat.ok() || !wanted.contains(stat->pgrp)) continue;
    AddToGroup(*stat, units, &out[stat->pgrp]);
  }
  closedir(dir);
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<GroupUsage> SampleProcessGroup(pid_t pgid, const std::string& proc_root) {
  absl::StatusOr<absl::flat_hash_map<pid_t, GroupUsage>> groups = SampleProcessGroups({pgid}, proc_root);
  if (!groups.ok()) return groups.status();
  auto it = groups->find(pgid);
  if (it == groups->end()) return absl::NotFoundError(absl::StrCat("no process in process group ", pgid));
  return it->second;
}

}  // namespace rc::worker
