// retire-cluster-fanout-bench: workflows at scale (issue 14). Two phases, each on a fresh
// private retire-cluster-main (durable SQLite store):
//   fanout:  a worker in this process (command allowed) runs one `command` task: this
//            binary again with --fanout-parent N. That parent reaches the cluster through
//            the worker's socket (RETIRE_CLUSTER_*), submits N echo children, waits for
//            all on one WaitTasks stream and prints their sum, which must be
//            N*(N-1)/2. Reports children/s (as the parent timed it, and end to end).
//   pending: no worker; one sleep task stays queued and M echo tasks wait on it with
//            `after`. Reports the coordinator's RSS growth per pending dependent task,
//            then cancels the sleep task: every dependent must end cancelled.
// Exit code 1 when a child or dependent is lost or wrong. bench/README.md: how to reproduce.
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/fanout_parent.h"
#include "bench/scale_sim_process.h"
#include "client/client.h"
#include "common/flags.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "common/process.h"
#include "worker/worker.h"

namespace {

namespace pb = ::retire_cluster::v1;
using rc::Json;
using rc::bench::CoordinatorProcess;

struct Options {
  std::string main_path;
  int64_t children = 10000;
  int64_t window = 1000;  // the coordinator's max_children_per_task
  int64_t batch = 500;
  int64_t pending = 10000;
  int64_t slots = 4;
  double settle_seconds = 10;
};

void Progress(const std::string& what) {
  std::cerr << absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()) << " fanout-bench: " << what
            << std::endl;
}

std::string SelfPath() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

int64_t Count(const pb::Stats& s, const std::string& status) {
  auto it = s.tasks().find(status);
  return it == s.tasks().end() ? 0 : it->second;
}

rc::client::Client Connect(const std::string& target) {
  rc::client::ClientOptions co;
  co.target = target;
  co.rpc_timeout = absl::Seconds(60);
  return rc::client::Client(co);
}

// The fan-out phase; prints one JSON line. False when the sum or a count is wrong.
bool RunFanout(const Options& o) {
  auto main = CoordinatorProcess::Start(o.main_path, absl::Seconds(30));
  if (!main.ok()) {
    std::cerr << "fanout-bench: " << main.status() << "\n";
    return false;
  }
  const std::string dir = (std::filesystem::temp_directory_path() / rc::NewId("rc-fanout")).string();
  rc::WorkerConfig w;
  w.join = (*main)->address();
  w.device_id = "fanout-worker";
  w.slots = static_cast<int>(o.slots);
  w.allow = {"command"};
  w.data_dir = dir;
  auto worker = rc::worker::Worker::Start(w);
  if (!worker.ok()) {
    std::cerr << "fanout-bench: worker: " << worker.status() << "\n";
    return false;
  }
  rc::client::Client client = Connect((*main)->address());
  bool online = false;
  for (int i = 0; i < 1000 && !online; ++i) {
    auto workers = client.Workers();
    online = workers.ok() && !workers->empty() && (*workers)[0].status() == pb::WORKER_STATUS_ONLINE;
    if (!online) absl::SleepFor(absl::Milliseconds(10));
  }
  if (!online) {
    std::cerr << "fanout-bench: the worker did not come online within 10 s\n";
    return false;
  }
  pb::TaskSpec parent;
  parent.set_task_type("command");
  Json payload = {{"argv", {SelfPath(), "--fanout-parent", std::to_string(o.children), "--window",
                            std::to_string(o.window), "--batch", std::to_string(o.batch)}}};
  parent.set_payload(payload.dump());
  parent.mutable_requirements()->set_timeout_seconds(900);
  parent.mutable_requirements()->set_max_retries(0);
  Progress(absl::StrCat("fanout: one parent, ", o.children, " children, ", o.slots, " slots"));
  auto before = rc::bench::SampleProcess((*main)->pid());
  const absl::Time start = absl::Now();
  absl::StatusOr<pb::Task> t = [&]() -> absl::StatusOr<pb::Task> {
    auto submitted = client.Submit(parent);
    if (!submitted.ok()) return submitted.status();
    return client.Wait(submitted->task_id(), absl::Seconds(960));
  }();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  auto after = rc::bench::SampleProcess((*main)->pid());
  auto stats = client.Stats();
  (*worker)->Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!t.ok()) {
    std::cerr << "fanout-bench: the parent task: " << t.status() << "\n";
    return false;
  }
  // The parent prints one JSON object on its last stdout line.
  const std::string& text = t->stdout();
  const size_t from = text.rfind('\n', text.size() >= 2 ? text.size() - 2 : 0);
  Json parent_says = rc::ParseOrString(from == std::string::npos ? text : text.substr(from + 1));
  const int64_t want = o.children * (o.children - 1) / 2;
  const bool sum_ok = parent_says.is_object() && parent_says.value("sum", int64_t{-1}) == want &&
                      parent_says.value("succeeded", int64_t{-1}) == o.children;
  const double parent_seconds = parent_says.is_object() ? parent_says.value("seconds", 0.0) : 0.0;
  Json out = {{"phase", "fanout"},
              {"children", o.children},
              {"parent_status", std::string(t->status() == pb::TASK_STATUS_SUCCESS ? "success" : "not success")},
              {"sum", parent_says.is_object() ? parent_says.value("sum", int64_t{-1}) : -1},
              {"expected_sum", want},
              {"children_per_second", parent_seconds > 0 ? static_cast<double>(o.children) / parent_seconds : 0.0},
              {"parent_seconds", parent_seconds},
              {"end_to_end_seconds", seconds},
              {"children_per_second_end_to_end", static_cast<double>(o.children) / seconds},
              {"slots", o.slots},
              {"window", o.window}};
  if (before.ok() && after.ok()) {
    out["coordinator_cpu_us_per_child"] = (after->cpu_seconds - before->cpu_seconds) * 1e6 / o.children;
    out["coordinator_peak_rss_mb"] = after->peak_rss_mb;
  }
  if (stats.ok()) out["tasks_succeeded"] = Count(*stats, "success");
  if (!sum_ok) {
    out["parent_stdout_tail"] = text.substr(text.size() > 400 ? text.size() - 400 : 0);
    out["parent_error"] = t->error_message();
    out["parent_stderr_tail"] = t->stderr().substr(t->stderr().size() > 400 ? t->stderr().size() - 400 : 0);
  }
  std::cout << out.dump() << std::endl;
  return sum_ok && t->status() == pb::TASK_STATUS_SUCCESS;
}

// The pending phase; prints one JSON line. False when a dependent was refused or lost.
bool RunPending(const Options& o) {
  auto main = CoordinatorProcess::Start(o.main_path, absl::Seconds(30));
  if (!main.ok()) {
    std::cerr << "fanout-bench: " << main.status() << "\n";
    return false;
  }
  rc::client::Client client = Connect((*main)->address());
  pb::TaskSpec sleep;
  sleep.set_task_type("sleep");
  sleep.set_payload(R"({"duration":3600})");
  auto blocker = client.Submit(sleep);  // no worker: it stays queued
  if (!blocker.ok()) {
    std::cerr << "fanout-bench: " << blocker.status() << "\n";
    return false;
  }
  absl::SleepFor(absl::Seconds(1));
  auto before = rc::bench::SampleProcess((*main)->pid());
  Progress(absl::StrCat("pending: ", o.pending, " tasks after ", blocker->task_id()));
  int64_t accepted = 0;
  std::string error;
  constexpr int64_t kBatch = 1000;
  for (int64_t from = 0; from < o.pending && error.empty(); from += kBatch) {
    std::vector<pb::TaskSpec> specs;
    for (int64_t i = from; i < std::min(o.pending, from + kBatch); ++i) {
      pb::TaskSpec& s = specs.emplace_back();
      s.set_task_type("echo");
      s.set_payload(absl::StrCat("{\"i\":", i, "}"));
      s.add_after()->set_task_id(blocker->task_id());
    }
    auto r = client.SubmitBatch(specs);
    if (!r.ok()) {
      error = r.status().ToString();
      break;
    }
    for (const auto& one : *r) {
      if (one.ok() && one->status() == pb::TASK_STATUS_PENDING) {
        ++accepted;
      } else if (error.empty()) {
        error = one.ok() ? absl::StrCat(one->task_id(), " accepted as status ", one->status(), ", not pending")
                         : one.status().ToString();
      }
    }
  }
  Progress(absl::StrCat("pending: ", accepted, " accepted; letting the allocator settle"));
  absl::SleepFor(absl::Seconds(o.settle_seconds));
  auto after = rc::bench::SampleProcess((*main)->pid());
  auto stats = client.Stats();
  const int64_t pending_counted = stats.ok() ? Count(*stats, "pending") : -1;
  // Cancelling the dependency cancels every dependent (a condition that can never hold).
  const absl::Time cancel_at = absl::Now();
  auto cancelled = client.Cancel(blocker->task_id());
  int64_t cascaded = 0;
  for (int i = 0; i < 600 && cancelled.ok(); ++i) {  // up to 60 s
    auto s = client.Stats();
    cascaded = s.ok() ? Count(*s, "cancelled") - 1 : cascaded;
    if (cascaded >= accepted) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  const double cascade_seconds = absl::ToDoubleSeconds(absl::Now() - cancel_at);
  if (!before.ok() || !after.ok()) {
    std::cerr << "fanout-bench: cannot read the coordinator's memory\n";
    return false;
  }
  Json out = {{"phase", "pending"},
              {"tasks", o.pending},
              {"accepted_pending", accepted},
              {"counted_pending", pending_counted},
              {"rss_before_mb", before->rss_mb},
              {"rss_mb", after->rss_mb},
              {"rss_bytes_per_pending_task", (after->rss_mb - before->rss_mb) * 1048576.0 / std::max<int64_t>(1, accepted)},
              {"cascade_cancelled", cascaded},
              {"cascade_seconds", cascade_seconds}};
  if (!error.empty()) out["first_error"] = error;
  std::cout << out.dump() << std::endl;
  return error.empty() && accepted == o.pending && pending_counted == accepted && cascaded == accepted;
}

std::vector<rc::FlagSpec> Specs() {
  return {{"main", "PATH", "retire-cluster-main to start (default build/coordinator/retire-cluster-main)"},
          {"phase", "PHASE", "fanout, pending or both (default both)"},
          {"children", "N", "fanout: children of the one parent (default 10000)"},
          {"window", "W", "fanout: most unfinished children at once (default 1000, max_children_per_task)"},
          {"batch", "B", "fanout: children per SubmitBatch (default 500)"},
          {"slots", "S", "fanout: the worker's slots (default 4)"},
          {"pending", "M", "pending: dependent tasks (default 10000)"},
          {"settle", "S", "pending: seconds before RSS is read (default 10)"},
          {"fanout-parent", "N", "run as the parent task (what the fanout phase starts)"},
          {"help", "", "show this help"}};
}

// --fanout-parent N: the parent task itself. Prints one JSON line; exit 1 unless every
// child succeeded.
int RunAsParent(const rc::ParsedFlags& f, int64_t children, int64_t window, int64_t batch) {
  (void)f;
  rc::client::ClientOptions co = rc::client::ClientOptionsFromEnvironment();
  co.rpc_timeout = absl::Seconds(60);
  rc::bench::FanoutResult r;
  {
    rc::client::Client client(co);
    r = rc::bench::RunFanoutParent(client, children, window, batch, absl::Minutes(14));
  }
  Json out = {{"children", r.children}, {"succeeded", r.succeeded}, {"failed", r.failed},
              {"sum", r.sum},           {"seconds", r.seconds},     {"as_task", !rc::client::CurrentTaskId().empty()}};
  if (!r.first_error.empty()) out["first_error"] = r.first_error;
  std::cout << out.dump() << std::endl;
  return r.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, Specs());
  if (!flags.ok() || flags->Has("help")) {
    (flags.ok() ? std::cout : std::cerr) << (flags.ok() ? "" : std::string(flags.status().message()) + "\n")
                                         << "usage: retire-cluster-fanout-bench [flags]\n" << rc::FormatFlagHelp(Specs());
    return flags.ok() ? 0 : 2;
  }
  Options o;
  for (auto [name, field, min] : {std::tuple{"children", &o.children, 1}, std::tuple{"window", &o.window, 1},
                                  std::tuple{"batch", &o.batch, 1}, std::tuple{"slots", &o.slots, 1},
                                  std::tuple{"pending", &o.pending, 1}}) {
    if (auto v = flags->Get(name)) {
      auto n = rc::FlagInt(name, *v);
      if (!n.ok() || *n < min) {
        std::cerr << "--" << name << ": expected an integer >= " << min << ", got '" << *v << "'\n";
        return 2;
      }
      *field = *n;
    }
  }
  if (auto v = flags->Get("fanout-parent")) {
    auto n = rc::FlagInt("fanout-parent", *v);
    if (!n.ok() || *n < 1) {
      std::cerr << "--fanout-parent: expected an integer >= 1, got '" << *v << "'\n";
      return 2;
    }
    return RunAsParent(*flags, *n, o.window, o.batch);
  }
  rc::bench::StopCoordinatorOnSignal();
  if (auto v = flags->Get("settle")) {
    auto s = rc::FlagDouble("settle", *v);
    if (!s.ok() || *s < 0) {
      std::cerr << "--settle: expected seconds >= 0, got '" << *v << "'\n";
      return 2;
    }
    o.settle_seconds = *s;
  }
  o.main_path = flags->Get("main").value_or("build/coordinator/retire-cluster-main");
  const std::string phase = flags->Get("phase").value_or("both");
  if (phase != "fanout" && phase != "pending" && phase != "both") {
    std::cerr << "--phase: expected fanout, pending or both, got '" << phase << "'\n";
    return 2;
  }
  rc::SetupLogging("warn");
  bool ok = true;
  if (phase != "pending") ok = RunFanout(o) && ok;
  if (phase != "fanout") ok = RunPending(o) && ok;
  return ok ? 0 : 1;
}
