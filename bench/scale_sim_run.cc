#include "bench/scale_sim_run.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/scale_sim_fleet.h"
#include "bench/scale_sim_process.h"
#include "bench/scale_sim_submit.h"
#include "client/client.h"

namespace rc::bench {
namespace {

// Phases on stderr with a timestamp, so that a profiler can be aimed at one window.
void Progress(const std::string& what) {
  std::cerr << absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << " scale-sim: " << what
            << std::endl;
}

// What one measurement window saw: coordinator and simulator CPU, coordinator memory,
// and the fleet's counters over the window.
struct Window {
  double seconds = 0;
  std::optional<double> coordinator_cores, coordinator_rss_mb;  // RSS: highest sample
  double simulator_cores = 0;
  int64_t heartbeats = 0, assignments = 0, acks = 0;
};

struct Snapshot {
  std::optional<ProcessSample> coordinator;
  ProcessSample self;
  int64_t heartbeats, assignments, acks;
};

Snapshot Take(pid_t pid, const Fleet& fleet) {
  Snapshot s;
  if (pid > 0) {
    if (auto p = SampleProcess(pid); p.ok()) s.coordinator = *p;
  }
  s.self = SampleProcess(getpid()).value_or(ProcessSample{absl::Now()});
  s.heartbeats = fleet.counters().heartbeats.load();
  s.assignments = fleet.counters().assignments.load();
  s.acks = fleet.counters().acks.load();
  return s;
}

// Blocks until `end`, sampling the coordinator's RSS four times a second.
Window Measure(pid_t pid, const Fleet& fleet, absl::Time end) {
  Snapshot a = Take(pid, fleet);
  std::optional<double> rss;
  if (a.coordinator) rss = a.coordinator->rss_mb;
  while (absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(250), end - absl::Now()));
    if (pid > 0) {
      if (auto p = SampleProcess(pid); p.ok()) rss = std::max(rss.value_or(0), p->rss_mb);
    }
  }
  Snapshot b = Take(pid, fleet);
  Window w;
  w.seconds = absl::ToDoubleSeconds(b.self.at - a.self.at);
  if (a.coordinator && b.coordinator) w.coordinator_cores = CoresBetween(*a.coordinator, *b.coordinator);
  w.coordinator_rss_mb = rss;
  w.simulator_cores = CoresBetween(a.self, b.self);
  w.heartbeats = b.heartbeats - a.heartbeats;
  w.assignments = b.assignments - a.assignments;
  w.acks = b.acks - a.acks;
  return w;
}

Json WindowJson(const Window& w) {
  auto opt = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
  return {{"seconds", w.seconds},
          {"heartbeats_per_second", w.heartbeats / w.seconds},
          {"coordinator_cpu_cores", opt(w.coordinator_cores)},
          {"coordinator_rss_mb", opt(w.coordinator_rss_mb)},
          {"simulator_cpu_cores", w.simulator_cores}};
}

// The phases of one run, each adding to the report and to the list of errors.
class ScaleSim {
 public:
  explicit ScaleSim(const SimConfig& config)
      : config_(config),
        client_(client::ClientOptions{config.target, absl::Seconds(30), nullptr, ""}),
        fleet_(FleetOptions{config.target, config.workers, config.slots, config.streams_per_channel,
                            config.id_prefix}) {}

  Json Run(bool* ok) {
    report_ = {{"coordinator", config_.target},
               {"workers", config_.workers},
               {"slots", config_.slots},
               {"channels", (config_.workers + config_.streams_per_channel - 1) / config_.streams_per_channel}};
    Connect();
    if (errors_.empty()) IdleWindow();
    if (errors_.empty() && config_.tasks_per_second > 0) DispatchWindow();
    if (config_.coordinator_pid > 0) {
      if (auto p = SampleProcess(config_.coordinator_pid); p.ok()) report_["coordinator_peak_rss_mb"] = p->peak_rss_mb;
    }
    if (fleet_.ended() > 0 && report_["connected"] == config_.workers) {  // else Connect said so
      errors_.push_back(absl::StrCat(fleet_.ended(), " streams ended during the run; first: ", fleet_.first_error()));
    }
    Progress("done; closing the streams");
    fleet_.Stop();
    report_["errors"] = errors_;
    *ok = errors_.empty();
    return std::move(report_);
  }

 private:
  void Connect() {
    const absl::Time start = absl::Now();
    fleet_.Start();
    const bool all = fleet_.WaitRegistered(config_.connect_timeout);
    report_["connected"] = fleet_.registered();
    report_["connect_seconds"] = absl::ToDoubleSeconds(absl::Now() - start);
    Progress(absl::StrCat(fleet_.registered(), " of ", config_.workers, " workers registered in ",
                          absl::FormatDuration(absl::Now() - start)));
    if (!all) {
      errors_.push_back(absl::StrCat(fleet_.registered(), " of ", config_.workers, " workers registered",
                                     fleet_.first_error().empty() ? "" : "; " + fleet_.first_error()));
      return;
    }
    report_["listed_online"] = CheckRoster("after connecting");
    if (auto s = client_.Stats(); s.ok()) {
      report_["stats_online_devices"] = s->online_devices();
    } else {
      errors_.push_back(absl::StrCat("GetStats: ", s.status().message()));
    }
  }

  void IdleWindow() {
    // Let the connection burst settle into the steady one-heartbeat-per-interval sweep.
    absl::SleepFor(absl::Milliseconds(1500));
    Progress(absl::StrCat("idle window: ", absl::FormatDuration(config_.window), " of heartbeats only"));
    Json idle = WindowJson(Measure(config_.coordinator_pid, fleet_, absl::Now() + config_.window));
    idle["listed_online"] = CheckRoster("after the idle window");
    idle["oldest_heartbeat_seconds"] = oldest_heartbeat_seconds_;
    report_["idle"] = std::move(idle);
  }

  void DispatchWindow() {
    std::optional<int64_t> succeeded_before;
    if (auto s = client_.Stats(); s.ok()) succeeded_before = s->tasks_succeeded();
    const int64_t acks_before = fleet_.counters().acks.load();
    RateSubmitter submitter(config_.target, config_.tasks_per_second, config_.submitters);
    const absl::Time start = absl::Now() + absl::Milliseconds(20), end = start + config_.window;
    submitter.Start(start, end);
    absl::SleepFor(start - absl::Now());
    Progress(absl::StrCat("dispatch window: ", absl::FormatDuration(config_.window), " at ",
                          config_.tasks_per_second, " tasks/s"));
    Window w = Measure(config_.coordinator_pid, fleet_, end);
    submitter.Join();

    // Every accepted task must come back: wait (bounded) for the last results.
    const absl::Time drain_start = absl::Now();
    auto completed = [&] { return fleet_.counters().acks.load() - acks_before; };
    while (completed() < submitter.accepted() && absl::Now() - drain_start < absl::Seconds(60)) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    Json d = WindowJson(w);
    d["target_tasks_per_second"] = config_.tasks_per_second;
    d["submitted"] = submitter.accepted();
    d["submit_errors"] = submitter.refused();
    d["submitted_per_second"] = submitter.accepted() / w.seconds;
    d["dispatched_per_second"] = w.assignments / w.seconds;
    d["completed_per_second"] = w.acks / w.seconds;
    d["completed"] = completed();
    d["drain_seconds"] = absl::ToDoubleSeconds(absl::Now() - drain_start);
    if (submitter.refused() > 0) {
      errors_.push_back(absl::StrCat(submitter.refused(), " submits failed: ", submitter.first_error()));
    }
    if (completed() < submitter.accepted()) {
      errors_.push_back(absl::StrCat(completed(), " of ", submitter.accepted(), " tasks completed"));
    }
    // End to end: each submitter's last task succeeded with its payload echoed back.
    for (const auto& [id, payload] : submitter.samples()) {
      auto t = client_.Get(id);
      if (!t.ok() || t->status() != pb::TASK_STATUS_SUCCESS || t->result() != payload) {
        errors_.push_back(absl::StrCat("task ", id, " did not succeed with its payload echoed"));
      }
    }
    if (auto s = client_.Stats(); s.ok() && succeeded_before) {
      d["stats_succeeded_delta"] = s->tasks_succeeded() - *succeeded_before;
    }
    d["listed_online"] = CheckRoster("after the dispatch window");
    d["oldest_heartbeat_seconds"] = oldest_heartbeat_seconds_;
    report_["dispatch"] = std::move(d);
  }

  // The coordinator's own word (ListWorkers): how many simulated workers it lists
  // online, and how stale the oldest heartbeat it applied is. Fewer than all is an error.
  int CheckRoster(const std::string& when) {
    auto workers = client_.Workers();
    if (!workers.ok()) {
      errors_.push_back(absl::StrCat("ListWorkers ", when, ": ", workers.status().message()));
      return 0;
    }
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    int online = 0;
    int64_t oldest_ms = 0;
    for (const pb::Worker& w : *workers) {
      if (!absl::StartsWith(w.capabilities().device_id(), config_.id_prefix)) continue;
      if (w.status() != pb::WORKER_STATUS_ONLINE) continue;
      ++online;
      oldest_ms = std::max(oldest_ms, now_ms - w.last_heartbeat_ms());
    }
    oldest_heartbeat_seconds_ = oldest_ms / 1000.0;
    if (online != config_.workers) {
      errors_.push_back(absl::StrCat("ListWorkers ", when, ": ", online, " of ", config_.workers, " online"));
    }
    return online;
  }

  const SimConfig config_;
  client::Client client_;
  Fleet fleet_;
  Json report_;
  std::vector<std::string> errors_;
  double oldest_heartbeat_seconds_ = 0;
};

}  // namespace

Json RunScaleSim(const SimConfig& config, bool* ok) { return ScaleSim(config).Run(ok); }

}  // namespace rc::bench
