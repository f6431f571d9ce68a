// retire-cluster-scale-sim: thousands of simulated workers (real worker streams, 1 s
// heartbeats, instant echo) in one process against one coordinator, reporting the
// coordinator's CPU and memory while idle and while dispatching (report fields:
// bench/scale_sim_run.h).
#include <iostream>
#include <memory>

#include "bench/scale_sim_process.h"
#include "bench/scale_sim_run.h"
#include "common/flags.h"

namespace {

std::vector<rc::FlagSpec> Specs() {
  return {{"coordinator", "HOST:PORT", "a running coordinator (or use --main)"},
          {"coordinator-pid", "PID", "its process id, to measure its CPU and RSS"},
          {"main", "PATH", "start this retire-cluster-main privately (and stop it at exit)"},
          {"workers", "N", "simulated workers (default 1000)"},
          {"slots", "S", "slots per worker (default 4)"},
          {"seconds", "T", "length of each measurement window (default 10)"},
          {"tasks-per-second", "R", "echo tasks submitted in the dispatch window (default 1000; 0 skips it)"},
          {"submitters", "K", "client threads submitting in batches (default 2)"},
          {"streams-per-channel", "M", "worker streams per TCP connection (default 100)"},
          {"connect-timeout", "T", "seconds for all workers to register (default 120)"},
          {"json", "", "print one JSON object on one line"},
          {"help", "", "show this help"},
          {"version", "", "print the version"}};
}

}  // namespace

int main(int argc, char** argv) {
  rc::bench::StopCoordinatorOnSignal();  // first, before any thread starts
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, Specs());
  if (!flags.ok() || flags->Has("help")) {
    (flags.ok() ? std::cout : std::cerr) << (flags.ok() ? "" : std::string(flags.status().message()) + "\n")
                                         << "usage: retire-cluster-scale-sim (--coordinator HOST:PORT "
                                            "[--coordinator-pid PID] | --main PATH) [flags]\n"
                                         << rc::FormatFlagHelp(Specs());
    return flags.ok() ? 0 : 2;
  }
  if (flags->Has("version")) {
    std::cout << "retire-cluster-scale-sim " << RC_VERSION << "\n";
    return 0;
  }
  bool bad = false;
  auto number = [&](const char* name, double def, double min) {
    auto v = flags->Get(name);
    if (!v) return def;
    auto n = rc::FlagDouble(name, *v);
    if (!n.ok() || *n < min) {
      std::cerr << "--" << name << ": expected a number >= " << min << ", got '" << *v << "'\n";
      bad = true;
      return def;
    }
    return *n;
  };
  rc::bench::SimConfig config;
  config.workers = static_cast<int>(number("workers", 1000, 1));
  config.slots = static_cast<int>(number("slots", 4, 1));
  config.window = absl::Seconds(number("seconds", 10, 0.1));
  config.tasks_per_second = number("tasks-per-second", 1000, 0);
  config.submitters = static_cast<int>(number("submitters", 2, 1));
  config.streams_per_channel = static_cast<int>(number("streams-per-channel", 100, 1));
  config.connect_timeout = absl::Seconds(number("connect-timeout", 120, 1));
  config.coordinator_pid = static_cast<pid_t>(number("coordinator-pid", -1, 1));
  if (flags->Has("coordinator") == flags->Has("main")) {
    std::cerr << "give exactly one of --coordinator HOST:PORT and --main PATH\n";
    bad = true;
  }
  if (bad) return 2;

  rc::bench::RaiseOpenFileLimit();
  std::unique_ptr<rc::bench::CoordinatorProcess> main_process;  // stopped when main returns
  if (auto path = flags->Get("main")) {
    auto started = rc::bench::CoordinatorProcess::Start(*path, absl::Seconds(30));
    if (!started.ok()) {
      std::cerr << "retire-cluster-scale-sim: " << started.status().message() << "\n";
      return 1;
    }
    main_process = std::move(*started);
    config.target = main_process->address();
    config.coordinator_pid = main_process->pid();
  } else {
    config.target = *flags->Get("coordinator");
  }

  bool ok = false;
  rc::Json report = rc::bench::RunScaleSim(config, &ok);
  std::cout << (flags->Has("json") ? report.dump() : report.dump(2)) << "\n";
  if (!ok) std::cerr << "retire-cluster-scale-sim: failed: " << report["errors"].dump() << "\n";
  return ok ? 0 : 1;
}
