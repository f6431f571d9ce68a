#include "worker/browser/process_group_usage.h"

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace rc::worker {
// H6 (integration branch only): an inline namespace so that these symbols do not clash with
// H3's process_sampler (same names) until the lead replaces this file with it.
inline namespace pool_usage {

std::optional<ProcStat> ParseProcStat(absl::string_view text) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) return std::nullopt;
  ProcStat s;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text.substr(0, open)), &s.pid)) return std::nullopt;
  // After ')': field 3 (state) is rest[0]; pgrp is field 5, utime 14, stime 15, rss 24.
  std::vector<absl::string_view> rest =
      absl::StrSplit(text.substr(close + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  if (rest.size() < 22) return std::nullopt;
  uint64_t utime = 0, stime = 0;
  if (!absl::SimpleAtoi(rest[2], &s.pgrp) || !absl::SimpleAtoi(rest[11], &utime) ||
      !absl::SimpleAtoi(rest[12], &stime) || !absl::SimpleAtoi(rest[21], &s.rss_pages)) {
    return std::nullopt;
  }
  s.cpu_ticks = utime + stime;
  return s;
}

GroupUsage SampleProcessGroup(int pgid, const std::string& proc_root) {
  GroupUsage usage;
  if (pgid <= 0) return usage;
  static const long kTicks = sysconf(_SC_CLK_TCK);
  static const long kPage = sysconf(_SC_PAGESIZE);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(proc_root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(entry.path() / "stat");
    if (!in) continue;  // gone meanwhile
    std::stringstream text;
    text << in.rdbuf();
    std::optional<ProcStat> s = ParseProcStat(text.str());
    if (!s.has_value() || s->pgrp != pgid) continue;
    usage.processes++;
    usage.cpu_seconds += static_cast<double>(s->cpu_ticks) / static_cast<double>(kTicks > 0 ? kTicks : 100);
    usage.rss_bytes += s->rss_pages * (kPage > 0 ? kPage : 4096);
  }
  return usage;
}

double CpuPercent(double cpu_seconds_before, double cpu_seconds_now, absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (seconds <= 0 || cpu_seconds_now <= cpu_seconds_before) return 0;
  return 100.0 * (cpu_seconds_now - cpu_seconds_before) / seconds;
}

}  // namespace pool_usage
}  // namespace rc::worker
