// Reading a process group's CPU and memory from /proc (worker/process/process_sampler.h):
// the stat parser (command names with spaces and parentheses), the group sum over a fake
// /proc directory, the CPU percentage, and one real child process.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "worker/process/process_sampler.h"

namespace rc::worker {
namespace {

// A stat line as the kernel writes it (proc(5)), with the fields sampling reads set.
std::string StatLine(int pid, const std::string& comm, int ppid, int pgrp, int utime, int stime, int cutime,
                     int cstime, int rss) {
  return absl::StrCat(pid, " (", comm, ") S ", ppid, " ", pgrp, " ", pgrp, " 0 -1 4194560 100 0 0 0 ", utime, " ",
                      stime, " ", cutime, " ", cstime, " 20 0 1 0 5000 12345678 ", rss,
                      " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
}

class FakeProc {
 public:
  FakeProc() {
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("rc-fake-proc-", getpid(), "-", ++counter_);
    std::filesystem::create_directories(dir_);
    Write("meminfo", "MemTotal: 1 kB\n");  // not a process
    std::filesystem::create_directories(dir_ / "self");
  }
  ~FakeProc() { std::filesystem::remove_all(dir_); }
  void Add(int pid, const std::string& stat) {
    std::filesystem::create_directories(dir_ / std::to_string(pid));
    Write(absl::StrCat(pid, "/stat"), stat);
  }
  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  std::string path() const { return dir_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

}  // namespace

TEST_CASE("A stat line parses into pid, group, CPU ticks and resident pages") {
  absl::StatusOr<ProcStat> s = ParseProcStat(StatLine(4242, "python3", 1, 4240, 150, 50, 7, 3, 2560));
  REQUIRE(s.ok());
  CHECK(s->pid == 4242);
  CHECK(s->comm == "python3");
  CHECK(s->state == 'S');
  CHECK(s->ppid == 1);
  CHECK(s->pgrp == 4240);
  CHECK(s->utime_ticks == 150);
  CHECK(s->stime_ticks == 50);
  CHECK(s->cutime_ticks == 7);
  CHECK(s->cstime_ticks == 3);
  CHECK(s->start_ticks == 5000);
  CHECK(s->rss_pages == 2560);
}

TEST_CASE("A command name holding spaces and parentheses does not shift the fields after it") {
  for (const std::string comm : {"a b", ") (", "x) S 9 9 9", "((", "))", "", "tab\there"}) {
    absl::StatusOr<ProcStat> s = ParseProcStat(StatLine(77, comm, 5, 77, 11, 22, 0, 0, 33));
    REQUIRE(s.ok());
    CHECK(s->comm == comm);
    CHECK(s->ppid == 5);
    CHECK(s->pgrp == 77);
    CHECK(s->utime_ticks == 11);
    CHECK(s->stime_ticks == 22);
    CHECK(s->rss_pages == 33);
  }
}

TEST_CASE("A malformed stat line is refused naming what is wrong") {
  CHECK(ParseProcStat("").status().message() == "stat: no command name in parentheses");
  CHECK(ParseProcStat("12 (sh").status().message() == "stat: no command name in parentheses");
  CHECK(ParseProcStat("x (sh) S 1 2").status().message() == "stat: no pid before the command name");
  CHECK(ParseProcStat("12 (sh) S 1 2 3").status().message() == "stat: 6 fields, need at least 24 (through rss)");
  std::string bad = StatLine(12, "sh", 1, 12, 1, 1, 0, 0, 1);
  bad.replace(bad.find(") S 1 12"), 8, ") S 1 zz");
  absl::StatusOr<ProcStat> s = ParseProcStat(bad);
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(s.status().message() == "stat: field 5 (pgrp) is not a number");
}

TEST_CASE("CPU percent is CPU time over wall time, 100 per busy core, never negative") {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  CHECK(CpuPercent(1.0, 1.5, t0, t0 + absl::Seconds(1)) == Approx(50.0));
  CHECK(CpuPercent(0.0, 4.0, t0, t0 + absl::Seconds(2)) == Approx(200.0));  // two cores
  CHECK(CpuPercent(2.0, 2.0, t0, t0 + absl::Seconds(1)) == 0.0);           // idle
  CHECK(CpuPercent(3.0, 1.0, t0, t0 + absl::Seconds(1)) == 0.0);           // processes left the group
  CHECK(CpuPercent(0.0, 1.0, t0, t0) == 0.0);                               // no interval
  CHECK(CpuPercent(0.0, 1.0, t0 + absl::Seconds(1), t0) == 0.0);            // clock went back
}

TEST_CASE("A group's usage sums its processes only, children's waited-for time included") {
  FakeProc proc;
  proc.Add(100, StatLine(100, "bash", 1, 100, 100, 50, 30, 20, 1000));      // 2.0 s, 1000 pages
  proc.Add(101, StatLine(101, "worker (x)", 100, 100, 80, 20, 0, 0, 3000));  // 1.0 s, 3000 pages
  proc.Add(102, StatLine(102, "zombie", 100, 100, 10, 0, 0, 0, 0));          // 0.1 s, exited not reaped
  proc.Add(200, StatLine(200, "other", 1, 200, 9999, 9999, 0, 0, 9999));      // another group
  proc.Add(300, "garbage");                                                  // skipped, not fatal
  const ProcUnits units{100, 4096};
  absl::StatusOr<absl::flat_hash_map<pid_t, GroupUsage>> groups =
      SampleProcessGroups({100, 555}, proc.path(), units);
  REQUIRE(groups.ok());
  REQUIRE(groups->size() == 1);  // group 555 has no process
  const GroupUsage& g = groups->at(100);
  CHECK(g.processes == 3);
  CHECK(g.cpu_seconds == Approx(3.1));
  CHECK(g.memory_bytes == 4000 * 4096);
  CHECK(g.largest_rss_bytes == 3000 * 4096);
}

TEST_CASE("Sampling one group says NOT_FOUND once it has no process, FAILED_PRECONDITION without /proc") {
  FakeProc proc;
  proc.Add(100, StatLine(100, "sh", 1, 100, 1, 1, 0, 0, 1));
  CHECK(SampleProcessGroup(100, proc.path()).ok());
  absl::StatusOr<GroupUsage> gone = SampleProcessGroup(101, proc.path());
  CHECK(gone.status().code() == absl::StatusCode::kNotFound);
  CHECK(gone.status().message() == "no process in process group 101");
  absl::StatusOr<GroupUsage> none = SampleProcessGroup(100, proc.path() + "/missing");
  CHECK(none.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(none.status().message().find("cannot list " + proc.path() + "/missing") == 0);
}

TEST_CASE("The real /proc: a child in its own process group is found with its memory") {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    setpgid(0, 0);
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(child, child);  // either side may win the race; both set the same group
  // Sample once it runs sleep: in the middle of exec the child's memory may read 0.
  for (int i = 0; i < 500; ++i) {  // at most 5 s
    std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "sleep") break;
    usleep(10'000);
  }
  absl::StatusOr<GroupUsage> g = SampleProcessGroup(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  REQUIRE(g.ok());
  CHECK(g->processes == 1);
  CHECK(g->memory_bytes > 0);
  CHECK(g->cpu_seconds >= 0);
  CHECK(SampleProcessGroup(child).status().code() == absl::StatusCode::kNotFound);
}

}  // namespace rc::worker
