// retire-cluster-memory-bench: the coordinator's memory per queued and per finished task.
// Starts a private retire-cluster-main (durable SQLite store, default limits unless
// --config says otherwise), submits N tasks with payloads of B bytes and reads the
// coordinator's VmRSS / VmHWM from /proc:
//   queued:   no workers; RSS once all N are accepted (they all wait in the queue);
//   finished: simulated workers echo every task at once (bench/scale_sim_fleet.h) while
//             the tasks are submitted (at most --window unfinished); RSS once all N are
//             finished and acknowledged, after the allocator settled.
// Every accepted task must be counted at the end (queued: N queued; finished: N
// succeeded), else the exit code is 1. How to reproduce the figures: bench/README.md.
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/scale_sim_fleet.h"
#include "bench/scale_sim_process.h"
#include "client/client.h"
#include "common/flags.h"

namespace {

using rc::bench::CoordinatorProcess;
using rc::bench::ProcessSample;
namespace pb = ::retire_cluster::v1;

struct Options {
  std::string main_path, config;
  int64_t tasks = 1000000;
  int64_t payload_bytes = 1024;
  int64_t window = 100000;
  int threads = 4;
};

void Progress(const std::string& what) {
  std::cerr << absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << " memory-bench: " << what
            << std::endl;
}

// A JSON object payload of exactly `bytes` bytes (at least 24), distinct per task.
std::string Payload(int64_t i, int64_t bytes) {
  std::string head = absl::StrCat("{\"i\":", i, ",\"pad\":\"");
  const int64_t pad = std::max<int64_t>(0, bytes - static_cast<int64_t>(head.size()) - 2);
  return absl::StrCat(head, std::string(pad, 'x'), "\"}");
}

// Submits tasks [0, n) from several threads in batches; `may_submit(submitted)` blocks
// until the caller's window allows more. Returns how many were accepted.
int64_t SubmitAll(const Options& o, const std::string& target, const std::function<void(int64_t)>& wait_window,
                  std::string* error) {
  std::atomic<int64_t> next{0}, accepted{0};
  std::mutex error_mu;
  constexpr int64_t kBatch = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&] {
      rc::client::ClientOptions co;
      co.target = target;
      co.rpc_timeout = absl::Seconds(60);
      rc::client::Client client(co);
      while (true) {
        const int64_t from = next.fetch_add(kBatch);
        if (from >= o.tasks) return;
        wait_window(from);
        std::vector<pb::TaskSpec> specs;
        for (int64_t i = from; i < std::min(o.tasks, from + kBatch); ++i) {
          pb::TaskSpec& s = specs.emplace_back();
          s.set_task_type("echo");
          s.set_payload(Payload(i, o.payload_bytes));
        }
        auto r = client.SubmitBatch(specs);
        std::lock_guard<std::mutex> lock(error_mu);
        if (!r.ok()) {
          if (error->empty()) *error = r.status().ToString();
          return;
        }
        for (const auto& one : *r) {
          if (one.ok()) {
            ++accepted;
          } else if (error->empty()) {
            *error = one.status().ToString();
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return accepted.load();
}

int64_t Count(const pb::Stats& s, const std::string& status) {
  auto it = s.tasks().find(status);
  return it == s.tasks().end() ? 0 : it->second;
}

// One phase on a fresh coordinator; prints one JSON line. False when tasks were lost.
bool RunPhase(const Options& o, bool finish) {
  const std::string phase = finish ? "finished" : "queued";
  std::vector<std::string> extra;
  if (!o.config.empty()) extra = {"--config", o.config};
  auto main = CoordinatorProcess::Start(o.main_path, absl::Seconds(30), extra);
  if (!main.ok()) {
    std::cerr << "memory-bench: " << main.status() << "\n";
    return false;
  }
  const std::string target = (*main)->address();
  absl::SleepFor(absl::Seconds(1));
  auto before = rc::bench::SampleProcess((*main)->pid());
  std::unique_ptr<rc::bench::Fleet> fleet;
  if (finish) {
    fleet = std::make_unique<rc::bench::Fleet>(rc::bench::FleetOptions{target, 8, 64, 100, "mem-"});
    fleet->Start();
    if (!fleet->WaitRegistered(absl::Seconds(30))) {
      std::cerr << "memory-bench: workers did not register: " << fleet->first_error() << "\n";
      return false;
    }
  }
  Progress(absl::StrCat(phase, ": submitting ", o.tasks, " tasks of ", o.payload_bytes, " bytes"));
  const absl::Time start = absl::Now();
  std::string error;
  auto wait_window = [&](int64_t submitted) {
    if (!finish) return;
    const absl::Time give_up = absl::Now() + absl::Minutes(5);
    while (submitted - fleet->counters().acks.load() > o.window && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  };
  const int64_t accepted = SubmitAll(o, target, wait_window, &error);
  if (finish) {
    const absl::Time give_up = absl::Now() + absl::Minutes(10);
    while (fleet->counters().acks.load() < accepted && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(50));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  Progress(absl::StrCat(phase, ": ", accepted, " accepted in ", absl::StrFormat("%.1f", seconds),
                        " s; letting the allocator settle"));
  absl::SleepFor(absl::Seconds(15));  // jemalloc returns freed pages after ~10 s
  auto after = rc::bench::SampleProcess((*main)->pid());
  rc::client::ClientOptions co;
  co.target = target;
  auto stats = rc::client::Client(co).Stats();
  if (fleet != nullptr) fleet->Stop();
  if (!before.ok() || !after.ok() || !stats.ok()) {
    std::cerr << "memory-bench: cannot read the coordinator's memory or stats\n";
    return false;
  }
  const int64_t counted = Count(*stats, finish ? "success" : "queued");
  const double per_task = (after->rss_mb - before->rss_mb) * 1048576.0 / std::max<int64_t>(1, accepted);
  std::cout << absl::StrFormat(
                   "{\"phase\":\"%s\",\"tasks\":%d,\"accepted\":%d,\"counted\":%d,\"payload_bytes\":%d,"
                   "\"seconds\":%.1f,\"rss_before_mb\":%.1f,\"rss_mb\":%.1f,\"peak_rss_mb\":%.1f,"
                   "\"rss_bytes_per_task\":%.0f%s}",
                   phase, o.tasks, accepted, counted, o.payload_bytes, seconds, before->rss_mb, after->rss_mb,
                   after->peak_rss_mb, per_task, error.empty() ? "" : ",\"error\":\"see stderr\"")
            << std::endl;
  if (!error.empty()) std::cerr << "memory-bench: first error: " << error << "\n";
  return accepted == o.tasks && counted == accepted;
}

std::vector<rc::FlagSpec> Specs() {
  return {{"main", "PATH", "retire-cluster-main to start (default build/coordinator/retire-cluster-main)"},
          {"config", "FILE", "a coordinator config for it (default: none, the defaults)"},
          {"phase", "PHASE", "queued, finished or both (default both)"},
          {"tasks", "N", "tasks per phase (default 1000000)"},
          {"payload-bytes", "B", "payload size (default 1024)"},
          {"window", "W", "finished phase: most tasks unfinished at once (default 100000)"},
          {"help", "", "show this help"}};
}

}  // namespace

int main(int argc, char** argv) {
  rc::bench::StopCoordinatorOnSignal();
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, Specs());
  if (!flags.ok() || flags->Has("help")) {
    (flags.ok() ? std::cout : std::cerr) << (flags.ok() ? "" : std::string(flags.status().message()) + "\n")
                                         << "usage: retire-cluster-memory-bench [flags]\n" << rc::FormatFlagHelp(Specs());
    return flags.ok() ? 0 : 2;
  }
  Options o;
  o.main_path = flags->Get("main").value_or("build/coordinator/retire-cluster-main");
  o.config = flags->Get("config").value_or("");
  for (auto [name, field, min] : {std::tuple{"tasks", &o.tasks, 1}, std::tuple{"payload-bytes", &o.payload_bytes, 24},
                                  std::tuple{"window", &o.window, 1}}) {
    if (auto v = flags->Get(name)) {
      auto n = rc::FlagInt(name, *v);
      if (!n.ok() || *n < min) {
        std::cerr << "--" << name << ": expected an integer >= " << min << ", got '" << *v << "'\n";
        return 2;
      }
      *field = *n;
    }
  }
  const std::string phase = flags->Get("phase").value_or("both");
  if (phase != "queued" && phase != "finished" && phase != "both") {
    std::cerr << "--phase: expected queued, finished or both, got '" << phase << "'\n";
    return 2;
  }
  bool ok = true;
  if (phase != "finished") ok = RunPhase(o, false) && ok;
  if (phase != "queued") ok = RunPhase(o, true) && ok;
  return ok ? 0 : 1;
}
