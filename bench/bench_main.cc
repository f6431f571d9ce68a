// retire-cluster-bench: end-to-end throughput and latency through the C++ SDK, against
// a running cluster (--coordinator) or a local one it starts itself (--local-workers).
// How to reproduce the published figures: bench/README.md.
#include <sys/resource.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "bench/bench_runs.h"
#include "bench/local_cluster.h"
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
          {"slots", "S", "slots per local worker (default 16)"},
          {"store", "STORE", "local cluster's store: sqlite (durable, default) or memory"},
          {"mode", "MODE", "throughput (default) or latency"},
          {"tasks", "N", "tasks to measure (default 10000)"},
          {"concurrency", "C", "throughput: most tasks in flight at once (default 10000)"},
          {"warmup", "W", "round trips before measuring, not counted (default 50)"},
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
  if (mode != "throughput" && mode != "latency") {
    std::cerr << "--mode: expected throughput or latency, got '" << mode << "'\n";
    return 2;
  }
  rc::bench::RunOptions run;
  run.tasks = get_int("tasks", 10000, 1);
  run.in_flight = get_int("concurrency", 10000, 1);
  run.warmup = get_int("warmup", 50, 0);
  run.type = flags->Get("type").value_or("echo");
  run.payload_bytes = get_int("payload-bytes", 16, 0);
  run.fixed_payload = flags->Get("payload");

  std::unique_ptr<rc::bench::LocalCluster> local;
  std::string target = flags->Get("coordinator").value_or("127.0.0.1:8080");
  if (flags->Has("local-workers")) {
    if (flags->Has("coordinator")) {
      std::cerr << "--local-workers and --coordinator exclude each other\n";
      return 2;
    }
    rc::SetupLogging("warn");
    rc::bench::LocalClusterOptions lc;
    lc.workers = static_cast<int>(get_int("local-workers", 2, 1));
    lc.slots = static_cast<int>(get_int("slots", 16, 1));
    lc.store = flags->Get("store").value_or("sqlite");
    auto started = rc::bench::LocalCluster::Start(lc);
    if (!started.ok()) {
      std::cerr << "local cluster: " << started.status().message() << "\n";
      return 1;
    }
    local = std::move(*started);
    target = local->address();
  } else if (flags->Has("slots") || flags->Has("store")) {
    std::cerr << "--slots and --store configure --local-workers only\n";
    return 2;
  }

  // With --local-workers this process is the whole cluster: its CPU time per task is a
  // figure that noise from other processes on the machine barely moves.
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu_before = cpu_seconds();
  const rc::coordinator::StoreWriteStats writes_before =
      local != nullptr ? local->store_writes() : rc::coordinator::StoreWriteStats{};
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
  rc::bench::RunResult r;
  {
    rc::client::Client client(rc::client::ClientOptions{target, absl::Seconds(60), *credentials, token});
    r = mode == "latency" ? rc::bench::Latency(client, run) : rc::bench::Throughput(client, run);
  }
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
  if (local != nullptr) {
    const double n = static_cast<double>(run.tasks + run.warmup);
    out["cluster_cpu_us_per_task"] = (cpu_seconds() - cpu_before) * 1e6 / n;
    // What the store wrote per task (warmup included, as for the CPU figure): records,
    // bytes handed to SQLite, and bytes of pages SQLite wrote to its WAL. Zero for the
    // memory store. Read while the last tasks' records may still be committing.
    const rc::coordinator::StoreWriteStats w = local->store_writes();
    out["store_records_per_task"] = static_cast<double>(w.records - writes_before.records) / n;
    out["store_bytes_per_task"] = static_cast<double>(w.bytes - writes_before.bytes) / n;
    out["store_wal_bytes_per_task"] =
        static_cast<double>((w.pages_written - writes_before.pages_written) * w.page_size) / n;
  }
  if (!r.first_error.empty()) out["first_error"] = r.first_error;
  if (flags->Has("json")) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << out.dump(2) << "\n";
  }
  return r.failed == 0 ? 0 : 1;
}
