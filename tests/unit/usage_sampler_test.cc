// Live CPU and memory of running attempts (worker/execution/usage_sampler.h): a real busy
// process sampled on a FakeClock, the sampler's silence once an attempt ends or its
// processes are gone, and the Executor sending samples of a `command` task while it runs.
// The fake clock decides when a sample is taken and the interval it covers; the CPU time
// is the process's own, so the tests wait (bounded, real time) until the busy loop has
// used enough of it before advancing the clock.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "tests/unit/event_recorder.h"
#include "worker/execution/usage_sampler.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/process/process_runner.h"
#include "worker/process/process_sampler.h"

namespace rc::worker {
namespace {

// Waits (bounded, real time) until `pid`'s process group has used `seconds` of CPU.
bool UsedCpu(int pid, double seconds, absl::Duration limit = absl::Seconds(60)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    absl::StatusOr<GroupUsage> g = SampleProcessGroup(pid);
    if (g.ok() && g->cpu_seconds >= seconds) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Waits (bounded, real time) until the recorder holds `n` progress events.
bool WaitProgress(Recorder& r, size_t n, absl::Duration limit = absl::Seconds(10)) {
  absl::MutexLock lock(&r.mu);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(r.mu) { return r.progress.size() >= n; };
  return r.mu.AwaitWithTimeout(absl::Condition(&enough), limit);
}

size_t ProgressCount(Recorder& r) {
  absl::MutexLock lock(&r.mu);
  return r.progress.size();
}

// A busy loop in its own process group (RunProcess), until `stop` is cancelled.
struct BusyProcess {
  explicit BusyProcess(const Clock* clock, std::function<void(int)> on_start)
      : stop(absl::InfiniteFuture(), clock) {
    thread = std::thread([this, on_start] {
      ProcessSpec spec;
      spec.argv = {"sh", "-c", "while :; do :; done"};
      spec.env = {"PATH=/usr/bin:/bin"};
      (void)RunProcess(spec, stop, [&](int p) {
        pid.store(p);
        on_start(p);
      });
    });
  }
  ~BusyProcess() {
    stop.Cancel();
    thread.join();
  }
  int WaitPid() {
    for (int i = 0; i < 5000 && pid.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(2));
    return pid.load();
  }
  StopToken stop;
  std::atomic<int> pid{0};
  std::thread thread;
};

}  // namespace

TEST_CASE("A busy process is sampled each interval of the fake clock: pid, cpu over the interval, memory") {
  FakeClock clock;
  Recorder events;
  UsageSampler sampler(&events, &clock);
  BusyProcess busy(&clock, [&](int pid) { sampler.Track("t1", 2, pid); });
  const int pid = busy.WaitPid();
  REQUIRE(pid > 0);
  REQUIRE(sampler.tracked() == 1);

  // First sample: its percentage counts from the process's start (the pid report).
  REQUIRE(UsedCpu(pid, 0.6));
  REQUIRE(clock.WaitForWaiters(1));  // the sampler waits out its interval
  CHECK(ProgressCount(events) == 0);  // nothing before the interval ends
  clock.Advance(absl::Seconds(1));
  REQUIRE(WaitProgress(events, 1));
  double first_cpu = 0;
  {
    absl::MutexLock lock(&events.mu);
    const pb::TaskProgress& p = events.progress[0];
    CHECK(p.task_id() == "t1");
    CHECK(p.attempt() == 2);
    CHECK(p.pid() == pid);
    REQUIRE(p.has_usage());
    CHECK(p.usage().pid() == pid);
    CHECK(p.usage().cpu_seconds() >= 0.6);
    CHECK(p.usage().cpu_percent() >= 60.0);  // >= 0.6 s of CPU in 1 s of the clock
    CHECK(p.usage().memory_bytes() > 0);
    CHECK(p.usage().sampled_at_ms() == clock.NowMs());
    first_cpu = p.usage().cpu_seconds();
  }

  // Second sample: over the interval since the first only.
  REQUIRE(UsedCpu(pid, first_cpu + 0.6));
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(absl::Seconds(2));
  REQUIRE(WaitProgress(events, 2));
  {
    absl::MutexLock lock(&events.mu);
    const pb::ResourceUsage& u = events.progress[1].usage();
    CHECK(u.cpu_seconds() >= first_cpu + 0.6);
    const double expected = 100.0 * (u.cpu_seconds() - first_cpu) / 2.0;
    CHECK(u.cpu_percent() == Approx(expected));
    CHECK(u.cpu_percent() >= 30.0);
    CHECK(u.sampled_at_ms() == clock.NowMs());
  }

  // Untracked: no more samples, and the sampler no longer waits on the clock.
  sampler.Untrack("t1", 2);
  CHECK(sampler.tracked() == 0);
  bool idle = false;
  for (int i = 0; i < 2000 && !idle; ++i) {
    idle = !clock.WaitForWaiters(1, absl::ZeroDuration());
    if (!idle) absl::SleepFor(absl::Milliseconds(1));
  }
  CHECK(idle);
  clock.Advance(absl::Seconds(5));
  sampler.SampleNow();
  CHECK(ProgressCount(events) == 2);
}

TEST_CASE("An attempt whose processes are gone is dropped without a sample") {
  FakeClock clock;
  Recorder events;
  UsageSampler sampler(&events, &clock);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(0);
  REQUIRE(waitpid(child, nullptr, 0) == child);
  sampler.Track("t1", 1, child);
  sampler.Track("t2", 1, 0);  // no pid: ignored
  REQUIRE(sampler.tracked() == 1);
  sampler.SampleNow();
  CHECK(sampler.tracked() == 0);
  CHECK(ProgressCount(events) == 0);
}

TEST_CASE("An idle sampler does not wait on the clock") {
  FakeClock clock;
  Recorder events;
  UsageSampler sampler(&events, &clock);
  CHECK_FALSE(clock.WaitForWaiters(1, absl::Milliseconds(200)));
}

TEST_CASE("The executor samples a running command task and stops with its end, before the final report") {
  FakeClock clock;
  Recorder events;
  HandlerRegistry handlers;
  ExecutionOptions options;
  options.work_root = (std::filesystem::temp_directory_path() / NewId("rc-sampler-test")).string();
  handlers.Add("command", MakeCommandHandler(options));
  Executor executor(1, &handlers, &events, pb::Capabilities(), &clock);
  pb::Assignment a;
  a.set_task_id("cmd");
  a.set_attempt(1);
  a.set_task_type("command");
  a.set_payload(nlohmann::json{{"command", "while :; do :; done"}}.dump());
  a.set_timeout_seconds(3600);
  executor.Assign(a);

  REQUIRE(WaitProgress(events, 1));  // the pid, reported when the process started
  int pid = 0;
  {
    absl::MutexLock lock(&events.mu);
    CHECK_FALSE(events.progress[0].has_usage());
    pid = events.progress[0].pid();
  }
  REQUIRE(pid > 0);
  REQUIRE(UsedCpu(pid, 0.3));
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(absl::Seconds(1));
  REQUIRE(WaitProgress(events, 2));
  {
    absl::MutexLock lock(&events.mu);
    const pb::TaskProgress& p = events.progress[1];
    CHECK(p.task_id() == "cmd");
    CHECK(p.attempt() == 1);
    CHECK(p.usage().pid() == pid);
    CHECK(p.usage().cpu_percent() >= 30.0);
    CHECK(p.usage().memory_bytes() > 0);
  }

  executor.Cancel("cmd", 1);
  REQUIRE(events.WaitFinished(1));
  const size_t samples = ProgressCount(events);
  clock.Advance(absl::Seconds(3));  // a sampler still tracking it would send now
  absl::SleepFor(absl::Milliseconds(100));
  {
    absl::MutexLock lock(&events.mu);
    CHECK(events.progress.size() == samples);
    CHECK(events.finished[0].status() == pb::TASK_STATUS_CANCELLED);
    CHECK(events.finished[0].usage().pid() == 0);
    CHECK(events.finished[0].usage().sampled_at_ms() == 0);
    CHECK(events.finished[0].usage().cpu_percent() == 0);
  }
  executor.Stop();
  std::filesystem::remove_all(options.work_root);
}

}  // namespace rc::worker
