// retire-cluster-bench: end-to-end throughput and latency through the C++ SDK against
// a running cluster. First cut: synchronous submits from C client threads; batch and
// async submit, --local-workers and the scale simulator are still to come (bench/README.md).
#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "common/config.h"
#include "common/flags.h"
#include "common/json_view.h"

namespace {

namespace pb = ::retire_cluster::v1;

std::vector<rc::FlagSpec> Specs() {
  return {{"coordinator", "HOST:PORT", "cluster to measure (default 127.0.0.1:8080)"},
          {"mode", "MODE", "throughput (default) or latency"},
          {"tasks", "N", "tasks to run (default 10000)"},
          {"concurrency", "C", "client threads in throughput mode (default 8)"},
          {"type", "TYPE", "task type (default echo)"},
          {"payload-bytes", "B", "size of the string in the echo payload (default 16)"},
          {"payload", "JSON", "a fixed payload for every task (results then not compared)"},
          {"json", "", "print one JSON object"},
          {"help", "", "show this help"},
          {"version", "", "print the version"}};
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, Specs());
  if (!flags.ok() || flags->Has("help")) {
    (flags.ok() ? std::cout : std::cerr) << (flags.ok() ? "" : std::string(flags.status().message()) + "\n")
                                         << "usage: retire-cluster-bench [flags]\n" << rc::FormatFlagHelp(Specs());
    return flags.ok() ? 0 : 2;
  }
  auto get_int = [&](const char* name, int64_t def) -> int64_t {
    auto v = flags->Get(name);
    if (!v) return def;
    auto n = rc::FlagInt(name, *v);
    if (!n.ok() || *n < 1) {
      std::cerr << "--" << name << ": expected a positive integer\n";
      std::exit(2);
    }
    return *n;
  };
  if (flags->Has("version")) {
    std::cout << "retire-cluster-bench " << RC_VERSION << "\n";
    return 0;
  }
  const std::string target = flags->Get("coordinator").value_or("127.0.0.1:8080");
  const std::string mode = flags->Get("mode").value_or("throughput");
  const std::string type = flags->Get("type").value_or("echo");
  const int64_t tasks = get_int("tasks", 10000);
  const int64_t concurrency = mode == "latency" ? 1 : get_int("concurrency", 8);
  if (mode != "throughput" && mode != "latency") {
    std::cerr << "--mode: expected throughput or latency, got '" << mode << "'\n";
    return 2;
  }
  const std::string filler(static_cast<size_t>(get_int("payload-bytes", 16)), 'x');
  const std::optional<std::string> fixed_payload = flags->Get("payload");
  const bool check_results = type == "echo" && !fixed_payload.has_value();

  std::atomic<int64_t> next{0}, succeeded{0}, failed{0};
  std::vector<std::vector<double>> latencies(concurrency);
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int64_t c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      rc::client::Client client(rc::client::ClientOptions{target, absl::Seconds(30)});
      std::vector<std::pair<std::string, std::string>> mine;
      for (int64_t i = next++; i < tasks; i = next++) {
        pb::TaskSpec spec;
        spec.set_task_type(type);
        std::string payload = fixed_payload.value_or(absl::StrCat(R"({"i":)", i, R"(,"fill":")", filler, R"("})"));
        spec.set_payload(payload);
        absl::Time t0 = absl::Now();
        auto r = client.Submit(spec);
        if (!r.ok()) {
          ++failed;
          continue;
        }
        if (mode == "latency") {
          auto t = client.Wait(r->task_id(), absl::Seconds(60));
          latencies[c].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
          bool ok = t.ok() && t->status() == pb::TASK_STATUS_SUCCESS && (!check_results || t->result() == payload);
          ++(ok ? succeeded : failed);
        } else {
          mine.emplace_back(r->task_id(), std::move(payload));
        }
      }
      for (const auto& [id, payload] : mine) {
        auto t = client.Wait(id, absl::Seconds(120));
        bool ok = t.ok() && t->status() == pb::TASK_STATUS_SUCCESS && (!check_results || t->result() == payload);
        ++(ok ? succeeded : failed);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  rc::Json out = {{"mode", mode},
                  {"tasks", tasks},
                  {"succeeded", succeeded.load()},
                  {"failed", failed.load()},
                  {"seconds", seconds},
                  {"tasks_per_second", tasks / seconds}};
  out["latency_ms"] = {{"p50", Percentile(all, 0.5)},
                       {"p90", Percentile(all, 0.9)},
                       {"p99", Percentile(all, 0.99)},
                       {"max", all.empty() ? 0 : *std::max_element(all.begin(), all.end())}};
  if (flags->Has("json")) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << out.dump(2) << "\n";
  }
  return failed.load() == 0 ? 0 : 1;
}
