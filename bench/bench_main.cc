// retire-cluster-bench: end-to-end throughput and latency through the C++ SDK, against
// a running cluster (--coordinator), a local one in this process (--local-workers) or the
// real binaries as separate processes (--spawn-workers); and the floor a round trip cannot
// go below on this machine (--mode floor). How to reproduce the figures: bench/README.md.
#include <sys/resource.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_runs.h"
#include "bench/floor.h"
#include "bench/local_cluster.h"
#include "bench/scale_sim_process.h"
#include "bench/spawned_cluster.h"
#include "client/client.h"
#include "common/flags.h"
#include "common/json_view.h"
#include "common/process.h"
#include "common/tls.h"

namespace {

std::vector<rc::FlagSpec> Specs() {
  std::vector<rc::FlagSpec> specs = {
          {"coordinator", "HOST:PORT", "cluster to measure (default 127.0.0.1:8080)"},
          {"local-workers", "K", "start a local cluster with K workers instead (in this process)"},
          {"spawn-workers", "K",
           "start retire-cluster-main and K retire-cluster-worker processes instead (the deployed shape; "
           "reports CPU per task of each)"},
          {"bin-dir", "DIR", "--spawn-workers: where the binaries are, directly or as a build tree (default: "
                             "this binary's build tree)"},
          {"slots", "S", "slots per local or spawned worker (default 16)"},
          {"store", "STORE", "local or spawned cluster's store: sqlite (durable, default) or memory"},
          {"data-dir", "DIR", "parent of the local or spawned cluster's data dir and of the floor's "
                              "fsync file (default: the system's temp dir)"},
          {"mode", "MODE", "throughput (default), latency (also measures the floor) or floor"},
          {"tasks", "N", "tasks to measure (default 10000)"},
          {"concurrency", "C", "throughput: most tasks in flight at once (default 10000)"},
          {"warmup", "W", "round trips before measuring, not counted (default 50)"},
          {"latency-calls", "N", "latency: 1 (default) = one SubmitAndWait call per round trip, 2 = a "
                                 "submit and then a wait on the shared stream (SubmitAsync + WaitAsync)"},
          {"floor-samples", "N", "floor: fsyncs and round trips of each kind (default 500, after 50 untimed)"},
          {"type", "TYPE", "task type (default echo; js: an echo-like module, results checked too)"},
          {"payload-bytes", "B", "size of the string in the echo payload (default 16)"},
          {"payload", "JSON", "a fixed payload for every task (results then not compared)"},
          {"json", "", "print one JSON object on one line"},
          {"help", "", "show this help"},
          {"version", "", "print the version"}};
  for (rc::FlagSpec& s : rc::TlsClientFlagSpecs()) specs.push_back(std::move(s));
  for (rc::FlagSpec& s : rc::ClientTokenFlagSpecs()) specs.push_back(std::move(s));  // with --coordinator
  return specs;
}

rc::Json QuantilesJson(const rc::bench::Quantiles& q) {
  return {{"p50", q.p50}, {"p90", q.p90}, {"p99", q.p99}, {"max", q.max}};
}

rc::Json FloorJson(const rc::bench::Floor& f, int samples) {
  return {{"fsync_file", f.disk.path},
          {"filesystem", f.disk.fs_type},
          {"mount", f.disk.mount},
          {"device", f.disk.device},
          {"samples", samples},
          {"fsync_ms", QuantilesJson(f.disk.overwrite_ms)},
          {"fsync_append_ms", QuantilesJson(f.disk.append_ms)},
          {"fsync_after_idle_ms", QuantilesJson(f.disk.after_idle_ms)},
          {"idle_gap_ms", f.disk.idle_gap_ms},
          {"grpc_unary_ms", QuantilesJson(f.network.unary_ms)},
          {"grpc_stream_ms", QuantilesJson(f.network.stream_ms)},
          {"floor_ms", f.ms()},
          {"floor_formula", "fsync_ms.p50 + 2 x grpc_unary_ms.p50 (the submit's commit, the client's call and "
                            "the worker's hop)"},
          {"floor_after_idle_ms", f.after_idle_ms()},
          {"floor_after_idle_formula", "fsync_after_idle_ms.p50 (each fsync after sleeping idle_gap_ms = 2 x "
                                       "grpc_unary_ms.p50) + 2 x grpc_unary_ms.p50"}};
}

std::string FloorLine(const rc::bench::Floor& f) {
  return absl::StrFormat(
      "floor %.3f ms = 4 KiB fdatasync p50 %.3f ms (%s, %s on %s) + 2 x gRPC unary round trip p50 %.3f ms "
      "(the client's call and the worker's hop; a stream round trip is p50 %.3f ms)",
      f.ms(), f.disk.overwrite_ms.p50, f.disk.path, f.disk.fs_type, f.disk.device, f.network.unary_ms.p50,
      f.network.stream_ms.p50);
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of each spawned process, coordinator first; an error when one is gone.
absl::StatusOr<std::vector<double>> ClusterCpu(const rc::bench::SpawnedCluster& c) {
  std::vector<pid_t> pids = {c.coordinator_pid()};
  for (pid_t p : c.worker_pids()) pids.push_back(p);
  std::vector<double> cpu;
  for (pid_t p : pids) {
    auto s = rc::bench::SampleProcess(p);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("process ", p, " of the cluster is gone"));
    cpu.push_back(s->cpu_seconds);
  }
  return cpu;
}

}  // namespace

int main(int argc, char** argv) {
  rc::DisableMutexDeadlockDetection();
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, Specs());
  if (!flags.ok() || flags->Has("help")) {
    (flags.ok() ? std::cout : std::cerr) << (flags.ok() ? "" : std::string(flags.status().message()) + "\n")
                                         << "usage: retire-cluster-bench [flags]\n" << rc::FormatFlagHelp(Specs());
    return flags.ok() ? 0 : 2;
  }
  if (flags->Has("version")) {
    std::cout << "retire-cluster-bench " << RC_VERSION << "\n";
    return 0;
  }
  // Before any thread starts: a SIGINT or SIGTERM then stops the processes it started.
  if (flags->Has("spawn-workers")) rc::bench::StopChildrenOnSignal();
  auto get_int = [&](const char* name, int64_t def, int64_t min) -> int64_t {
    auto v = flags->Get(name);
    if (!v) return def;
    auto n = rc::FlagInt(name, *v);
    if (!n.ok() || *n < min) {
      std::cerr << "--" << name << ": expected an integer >= " << min << ", got '" << *v << "'\n";
      std::exit(2);
    }
    return *n;
  };
  const std::string mode = flags->Get("mode").value_or("throughput");
  if (mode != "throughput" && mode != "latency" && mode != "floor") {
    std::cerr << "--mode: expected throughput, latency or floor, got '" << mode << "'\n";
    return 2;
  }
  const int clusters = flags->Has("coordinator") + flags->Has("local-workers") + flags->Has("spawn-workers");
  if (clusters > 1) {
    std::cerr << "--coordinator, --local-workers and --spawn-workers exclude each other\n";
    return 2;
  }
  if (mode == "floor" && clusters > 0) {
    std::cerr << "--mode floor measures this machine's disk and loopback only: no --coordinator, --local-workers "
                 "or --spawn-workers\n";
    return 2;
  }
  const bool own_cluster = flags->Has("local-workers") || flags->Has("spawn-workers");
  if (!own_cluster && (flags->Has("slots") || flags->Has("store"))) {
    std::cerr << "--slots and --store configure --local-workers or --spawn-workers only\n";
    return 2;
  }
  if (flags->Has("bin-dir") && !flags->Has("spawn-workers")) {
    std::cerr << "--bin-dir goes with --spawn-workers only\n";
    return 2;
  }
  std::error_code ec;
  const std::string data_dir = flags->Get("data-dir").value_or(std::filesystem::temp_directory_path(ec).string());
  if (!std::filesystem::is_directory(data_dir, ec)) {
    std::cerr << "--data-dir: '" << data_dir << "' is not a directory\n";
    return 2;
  }
  const int floor_samples = static_cast<int>(get_int("floor-samples", 500, 10));
  auto measure_floor = [&]() -> std::optional<rc::bench::Floor> {
    auto f = rc::bench::MeasureFloor(data_dir, floor_samples, 50);
    if (!f.ok()) {
      std::cerr << "floor: " << f.status().message() << "\n";
      return std::nullopt;
    }
    return *f;
  };
  if (mode == "floor") {
    std::optional<rc::bench::Floor> f = measure_floor();
    if (!f) return 1;
    rc::Json out = {{"mode", mode}, {"data_dir", data_dir}, {"floor", FloorJson(*f, floor_samples)},
                    {"floor_ms", f->ms()}};
    std::cout << (flags->Has("json") ? out.dump() : out.dump(2) + "\n" + FloorLine(*f)) << "\n";
    return 0;
  }
  rc::bench::RunOptions run;
  run.tasks = get_int("tasks", 10000, 1);
  run.in_flight = get_int("concurrency", 10000, 1);
  run.warmup = get_int("warmup", 50, 0);
  const int64_t calls = get_int("latency-calls", 1, 1);
  if (calls > 2) {
    std::cerr << "--latency-calls: expected 1 or 2, got " << calls << "\n";
    return 2;
  }
  run.one_call = calls == 1;
  run.type = flags->Get("type").value_or("echo");
  run.payload_bytes = get_int("payload-bytes", 16, 0);
  run.fixed_payload = flags->Get("payload");

  std::unique_ptr<rc::bench::LocalCluster> local;
  std::unique_ptr<rc::bench::SpawnedCluster> spawned;
  std::string target = flags->Get("coordinator").value_or("127.0.0.1:8080");
  if (flags->Has("local-workers")) {
    rc::SetupLogging("warn");
    rc::bench::LocalClusterOptions lc;
    lc.workers = static_cast<int>(get_int("local-workers", 2, 1));
    lc.slots = static_cast<int>(get_int("slots", 16, 1));
    lc.store = flags->Get("store").value_or("sqlite");
    lc.base_dir = data_dir;
    auto started = rc::bench::LocalCluster::Start(lc);
    if (!started.ok()) {
      std::cerr << "local cluster: " << started.status().message() << "\n";
      return 1;
    }
    local = std::move(*started);
    target = local->address();
  } else if (flags->Has("spawn-workers")) {
    rc::bench::SpawnedClusterOptions sc;
    sc.workers = static_cast<int>(get_int("spawn-workers", 2, 1));
    sc.slots = static_cast<int>(get_int("slots", 16, 1));
    sc.store = flags->Get("store").value_or("sqlite");
    sc.bin_dir = flags->Get("bin-dir").value_or("");
    sc.base_dir = data_dir;
    auto started = rc::bench::SpawnedCluster::Start(sc);
    if (!started.ok()) {
      std::cerr << "spawned cluster: " << started.status().message() << "\n";
      return 1;
    }
    spawned = std::move(*started);
    target = spawned->address();
  }
  // Measured before the run, with the cluster up and idle, on the disk its store uses.
  std::optional<rc::bench::Floor> floor;
  if (mode == "latency") {
    floor = measure_floor();
    if (!floor) return 1;
  }

  bool use_tls = false;
  rc::TlsFiles tls;
  if (absl::Status s = rc::ApplyTlsClientFlags(*flags, &use_tls, &tls); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  std::string token;
  if (absl::Status s = rc::ApplyClientTokenFlags(*flags, &token); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  auto credentials = rc::MakeChannelCredentials(tls, use_tls);
  if (!credentials.ok()) {
    std::cerr << credentials.status().message() << "\n";
    return 2;
  }
  // With --local-workers this process is the whole cluster: its CPU time per task is a
  // figure that noise from other processes on the machine barely moves. With
  // --spawn-workers it is the client's, and each process of the cluster is read from /proc.
  const double cpu_before = SelfCpuSeconds();
  std::vector<double> cluster_before;
  if (spawned != nullptr) {
    auto cpu = ClusterCpu(*spawned);
    if (!cpu.ok()) {
      std::cerr << "spawned cluster: " << cpu.status().message() << "\n";
      return 1;
    }
    cluster_before = *cpu;
  }
  const rc::coordinator::StoreWriteStats writes_before =
      local != nullptr ? local->store_writes() : rc::coordinator::StoreWriteStats{};
  rc::bench::RunResult r;
  {
    rc::client::Client client(rc::client::ClientOptions{target, absl::Seconds(60), *credentials, token});
    r = mode == "latency" ? rc::bench::Latency(client, run) : rc::bench::Throughput(client, run);
  }
  const double cpu_after = SelfCpuSeconds();
  rc::Json out = {{"mode", mode},
                  {"tasks", run.tasks},
                  {"succeeded", r.succeeded},
                  {"failed", r.failed},
                  {"seconds", r.seconds},
                  {"tasks_per_second", static_cast<double>(r.succeeded) / r.seconds}};
  std::vector<double>& ms = r.latency_ms;
  out["latency_ms"] = {{"p50", rc::bench::Percentile(ms, 0.5)},
                       {"p90", rc::bench::Percentile(ms, 0.9)},
                       {"p99", rc::bench::Percentile(ms, 0.99)},
                       {"max", rc::bench::Percentile(ms, 1.0)}};
  const double n = static_cast<double>(run.tasks + run.warmup);
  if (local != nullptr) {
    out["cluster_cpu_us_per_task"] = (cpu_after - cpu_before) * 1e6 / n;
    // What the store wrote per task (warmup included, as for the CPU figure): records,
    // bytes handed to SQLite, and bytes of pages SQLite wrote to its WAL. Zero for the
    // memory store. Read while the last tasks' records may still be committing.
    const rc::coordinator::StoreWriteStats w = local->store_writes();
    out["store_records_per_task"] = static_cast<double>(w.records - writes_before.records) / n;
    out["store_bytes_per_task"] = static_cast<double>(w.bytes - writes_before.bytes) / n;
    out["store_wal_bytes_per_task"] =
        static_cast<double>((w.pages_written - writes_before.pages_written) * w.page_size) / n;
  }
  if (spawned != nullptr) {
    auto cpu = ClusterCpu(*spawned);
    if (!cpu.ok()) {
      std::cerr << "spawned cluster: " << cpu.status().message() << "\n";
      return 1;
    }
    const double client_us = (cpu_after - cpu_before) * 1e6 / n;
    double total = client_us;
    rc::Json workers = rc::Json::array();
    for (size_t i = 0; i < cpu->size(); ++i) {
      const double us = ((*cpu)[i] - cluster_before[i]) * 1e6 / n;
      total += us;
      if (i > 0) workers.push_back(us);
    }
    out["cpu_us_per_task"] = {{"client", client_us},
                              {"coordinator", ((*cpu)[0] - cluster_before[0]) * 1e6 / n},
                              {"workers", workers},
                              {"total", total}};
    out["cluster_cpu_us_per_task"] = total;  // as with --local-workers: the client included
  }
  if (floor) {
    out["floor"] = FloorJson(*floor, floor_samples);
    out["floor_ms"] = floor->ms();
    out["p50_over_floor"] = out["latency_ms"]["p50"].get<double>() / floor->ms();
    out["p50_over_floor_after_idle"] = out["latency_ms"]["p50"].get<double>() / floor->after_idle_ms();
  }
  if (!r.first_error.empty()) out["first_error"] = r.first_error;
  if (flags->Has("json")) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << out.dump(2) << "\n";
    if (floor) {
      std::cout << absl::StrFormat("latency p50 %.3f ms = %.2f x the %s\n", out["latency_ms"]["p50"].get<double>(),
                                   out["p50_over_floor"].get<double>(), FloorLine(*floor));
      std::cout << absl::StrFormat("  = %.2f x %.3f ms with the fsync after an idle gap of %.3f ms (p50 %.3f ms)\n",
                                   out["p50_over_floor_after_idle"].get<double>(), floor->after_idle_ms(),
                                   floor->disk.idle_gap_ms, floor->disk.after_idle_ms.p50);
    }
  }
  return r.failed == 0 ? 0 : 1;
}
