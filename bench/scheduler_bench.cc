// retire-cluster-scheduler-bench: Google Benchmark microbenchmarks of the scheduler at
// cluster scale (issue 5): policy decisions/s and dispatch assignments/s with 10k
// workers x 100 requirement classes x 1M queued tasks, and memory per queued task.
//
//   retire-cluster-scheduler-bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// items_per_second is decisions/s (BM_Policy*), assignments/s (BM_Dispatch) or submits/s
// (BM_QueuedMemory, whose bytes_per_task counter is the memory figure); rates are per
// second of CPU time of the benchmark's thread.
//
// Every size is in the benchmark's name ("workers:10000/classes:100/..."); the ctest
// smoke run picks the small ones with --benchmark_filter='workers:100/|queued:10000/'.
#include <malloc.h>

#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/scheduling/placement_index.h"
#include "coordinator/scheduling/scheduling_policy.h"
#include "coordinator/scheduling/task_queue.h"
#include "coordinator/store/task_store.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

// ---- A synthetic heterogeneous cluster -------------------------------------------------

template <typename T>
T Pick(std::mt19937& rng, std::initializer_list<T> items) {
  return items.begin()[rng() % items.size()];
}

// One kind of machine; a cluster's workers are drawn from `models` of them (a fleet of
// 10k machines has far fewer distinct configurations; models = workers gives every
// worker its own random one).
pb::Capabilities RandomMachine(std::mt19937& rng) {
  pb::Capabilities c;
  c.set_platform(Pick(rng, {"linux", "linux", "linux", "linux", "linux", "linux", "darwin", "darwin", "windows",
                            "android"}));
  c.set_role(rng() % 4 == 0 ? "storage" : "compute");
  c.set_cpu_cores(1 << (rng() % 5));
  // Probes report a little less than the nominal size.
  c.set_memory_gb(Pick(rng, {2.0, 4.0, 8.0, 16.0, 32.0}) - 0.1 * (rng() % 4));
  c.set_storage_gb(20 + rng() % 500);
  c.set_gpu(rng() % 6 == 0);
  c.set_internet(rng() % 5 != 0);
  c.add_task_types("echo");
  c.add_task_types("sleep");
  if (rng() % 2 == 0) c.add_task_types("command");
  if (rng() % 3 == 0) c.add_task_types("python_eval");
  if (rng() % 2 == 0) c.add_tags("ssd");
  c.add_tags(rng() % 2 == 0 ? "eu" : "us");
  if (rng() % 4 == 0) c.add_tags("fast-net");
  return c;
}

ClassSpec RandomClass(std::mt19937& rng) {
  ClassSpec s;
  s.task_type = Pick<std::string>(rng, {"echo", "echo", "sleep", "command", "python_eval"});
  pb::Requirements& r = s.requirements;
  r.set_min_cpu_cores(Pick(rng, {0, 0, 1, 2, 4, 8}));
  r.set_min_memory_gb(Pick(rng, {0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0}));
  r.set_min_storage_gb(Pick(rng, {0.0, 0.0, 50.0, 200.0}));
  r.set_gpu_required(rng() % 10 == 0);
  r.set_internet_required(rng() % 4 == 0);
  r.set_required_platform(Pick<std::string>(rng, {"", "", "", "linux", "darwin"}));
  if (rng() % 8 == 0) r.set_required_role("storage");
  if (rng() % 4 == 0) r.add_required_tags("ssd");
  if (rng() % 6 == 0) r.add_required_tags(rng() % 2 == 0 ? "eu" : "us");
  return s;
}

struct Cluster {
  std::vector<pb::Capabilities> workers;  // device ids w00000.., 1 to 8 slots
  std::vector<ClassSpec> classes;         // distinct, each runnable by at least one worker
  double eligible_share = 0;              // mean share of workers that can run a class
};

Cluster MakeCluster(int workers, int classes, int models) {
  std::mt19937 rng(42);
  std::vector<pb::Capabilities> machines;
  for (int i = 0; i < models; ++i) machines.push_back(RandomMachine(rng));
  Cluster c;
  for (int i = 0; i < workers; ++i) {
    pb::Capabilities& w = c.workers.emplace_back(machines[rng() % machines.size()]);
    w.set_device_id(absl::StrFormat("w%05d", i));
    w.set_slots(1 + rng() % 8);
  }
  absl::flat_hash_set<std::string> seen;
  int64_t eligible = 0;
  while (static_cast<int>(c.classes.size()) < classes) {
    ClassSpec s = RandomClass(rng);
    if (!seen.insert(TaskQueue::ClassKey(s.task_type, s.requirements)).second) continue;
    int n = 0;
    for (const pb::Capabilities& w : c.workers) n += CanRun(w, s);
    if (n == 0) continue;
    eligible += n;
    c.classes.push_back(std::move(s));
  }
  c.eligible_share = static_cast<double>(eligible) / classes / workers;
  return c;
}

// ---- 1. Policy decisions/s ---------------------------------------------------------

// Places one task of each class in turn on the worker the policy picks; once half of the
// free slots are taken, each placement also finishes the oldest one (tasks of equal
// length), so the cluster stays at one load. A decision includes telling the policy's
// state about both changes. `choose(cls, spec)` answers a worker or -1; `set(worker, running,
// last_task_type)` records a change.
template <typename Choose, typename Set>
void Decide(benchmark::State& state, const Cluster& cluster, Choose choose, Set set) {
  std::mt19937 rng(7);
  std::vector<int> running;
  std::vector<absl::string_view> last_type(cluster.workers.size());
  int free_slots = 0;
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    running.push_back(rng() % cluster.workers[w].slots());
    free_slots += cluster.workers[w].slots() - running[w];
    set(w, running[w], "");
  }
  std::deque<int> placed;
  int64_t unplaced = 0;
  size_t next = 0;
  for (auto _ : state) {
    const ClassId cls = next++ % cluster.classes.size();
    const ClassSpec& spec = cluster.classes[cls];
    const int w = choose(cls, spec);
    if (w < 0) {
      ++unplaced;
      continue;
    }
    last_type[w] = spec.task_type;
    set(w, ++running[w], last_type[w]);
    placed.push_back(w);
    if (static_cast<int>(placed.size()) > free_slots / 2) {
      const int done = placed.front();
      placed.pop_front();
      set(done, --running[done], last_type[done]);
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["eligible_share"] = cluster.eligible_share;
  state.counters["unplaced_share"] = static_cast<double>(unplaced) / state.iterations();
}

// ChooseWorker itself: a scan of every worker per decision (the baseline).
void BM_PolicyScan(benchmark::State& state) {
  const Cluster cluster = MakeCluster(state.range(0), state.range(1), state.range(2));
  std::vector<WorkerView> views;
  for (const pb::Capabilities& caps : cluster.workers) views.push_back(WorkerView{&caps, 0, true, ""});
  Decide(
      state, cluster, [&](ClassId, const ClassSpec& spec) { return ChooseWorker(views, spec); },
      [&](int w, int running, absl::string_view last_type) {
        views[w].running = running;
        views[w].last_task_type = last_type;
      });
}
BENCHMARK(BM_PolicyScan)->ArgNames({"workers", "classes", "models"})->Args({100, 10, 10})->Args({10000, 100, 100});

// The same decisions through PlacementIndex, as the dispatcher makes them.
void BM_PolicyIndexed(benchmark::State& state) {
  const Cluster cluster = MakeCluster(state.range(0), state.range(1), state.range(2));
  PlacementIndex index;
  for (const pb::Capabilities& caps : cluster.workers) index.Add(&caps);
  for (size_t c = 0; c < cluster.classes.size(); ++c) index.AddClass(c, cluster.classes[c]);
  Decide(
      state, cluster,
      [&](ClassId cls, const ClassSpec&) {
        std::optional<PlacementIndex::Handle> w = index.Choose(cls);
        return w ? static_cast<int>(*w) : -1;
      },
      [&](int w, int running, absl::string_view last_type) { index.Update(w, running, true, last_type); });
}
BENCHMARK(BM_PolicyIndexed)
    ->ArgNames({"workers", "classes", "models"})
    ->Args({100, 10, 10})
    ->Args({10000, 100, 100})
    ->Args({10000, 100, 10000});

// ---- Coordinator set-up shared by 2 and 3 ------------------------------------------

// Keeps what a worker was assigned so that it can report it finished.
class RecordingLink final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    for (pb::Assignment& a : *m.mutable_assignments()) held.emplace_back(std::move(*a.mutable_task_id()), a.attempt());
    assigned += m.assignments_size();
  }
  void Close(absl::Status) override {}
  std::vector<std::pair<std::string, int32_t>> held;
  int64_t assigned = 0;
};

// Acknowledges every write at once and keeps nothing: the durable store keeps its records
// on disk, so what a queued task costs in memory is the coordinator's own state.
class NullStore final : public TaskStore {
 public:
  void Write(std::vector<TaskRecord>, std::function<void(absl::Status)> done) override { done(absl::OkStatus()); }
  void Delete(std::vector<std::string>, std::function<void(absl::Status)> done) override { done(absl::OkStatus()); }
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override { return std::vector<pb::Task>(); }
};

CoordinatorOptions BenchOptions() {
  CoordinatorOptions o;
  o.offline_after = absl::Hours(1);  // Tick is never called, but be explicit
  o.random = [] { return 0.5; };
  return o;
}

// Queues `tasks` small echo-like tasks spread over the classes and priorities, one Submit
// each (measured faster here than SubmitBatch in batches of 10k).
void QueueTasks(Coordinator& core, const Cluster& cluster, int64_t tasks) {
  for (int64_t i = 0; i < tasks; ++i) {
    const ClassSpec& cls = cluster.classes[i % cluster.classes.size()];
    pb::TaskSpec spec;
    spec.set_task_type(cls.task_type);
    spec.set_payload(absl::StrCat(R"({"i":)", i, "}"));
    spec.set_priority(static_cast<pb::Priority>(1 + i % 4));
    *spec.mutable_requirements() = cls.requirements;
    core.Submit(std::move(spec), [](absl::StatusOr<SubmitResult> r) {
      if (!r.ok()) std::abort();
    });
  }
}

size_t HeapInUse() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// ---- 2. Dispatch through the Coordinator -------------------------------------------

// `queued` tasks wait before any worker joins; then every worker joins (each join fills
// its free slots from the backlog: "fill_per_second"). Timed: workers in turn report all
// their attempts finished in one message and get new ones from the backlog, the steady
// state of a busy cluster; items_per_second = assignments/s.
void BM_Dispatch(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  const Cluster cluster = MakeCluster(state.range(0), state.range(1), state.range(3));
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(BenchOptions(), &store, &clock);
  QueueTasks(core, cluster, state.range(2));

  std::vector<std::shared_ptr<RecordingLink>> links;
  std::vector<uint64_t> epochs;
  const absl::Time fill_start = absl::Now();
  for (const pb::Capabilities& caps : cluster.workers) {
    pb::Register reg;
    *reg.mutable_capabilities() = caps;
    links.push_back(std::make_shared<RecordingLink>());
    epochs.push_back(*core.RegisterWorker(reg, links.back()));
  }
  int64_t filled = 0;
  for (const auto& link : links) filled += link->assigned;
  state.counters["fill_per_second"] = filled / absl::ToDoubleSeconds(absl::Now() - fill_start);

  int64_t assigned = 0;
  size_t next = 0;
  for (auto _ : state) {
    const size_t k = next++ % links.size();
    RecordingLink& link = *links[k];
    pb::WorkerMessage m;
    for (auto& [id, attempt] : link.held) {
      pb::TaskFinished* f = m.add_finished();
      f->set_task_id(std::move(id));
      f->set_attempt(attempt);
      f->set_status(pb::TASK_STATUS_SUCCESS);
    }
    link.held.clear();
    const int64_t before = link.assigned;
    core.HandleWorkerMessage(cluster.workers[k].device_id(), epochs[k], m);
    assigned += link.assigned - before;
  }
  state.SetItemsProcessed(assigned);
  state.counters["queued"] = core.Stats().tasks().at("queued");
  core.Shutdown();
}
// Each worker reports twice on average (the backlog stays well above what is drained).
BENCHMARK(BM_Dispatch)
    ->ArgNames({"workers", "classes", "queued", "models"})
    ->Args({100, 10, 10000, 10})
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dispatch)
    ->ArgNames({"workers", "classes", "queued", "models"})
    ->Args({10000, 100, 1000000, 100})
    ->Iterations(20000)
    ->Unit(benchmark::kMillisecond);

// ---- 3. Memory per queued task -----------------------------------------------------

// Heap bytes in use (mallinfo2) after queueing `queued` tasks with no worker connected,
// over the heap before the coordinator existed, per task. items_per_second = submits/s.
void BM_QueuedMemory(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  const Cluster cluster = MakeCluster(100, state.range(1), 100);
  for (auto _ : state) {
    const size_t before = HeapInUse();
    FakeClock clock;
    NullStore store;
    auto core = std::make_unique<Coordinator>(BenchOptions(), &store, &clock);
    QueueTasks(*core, cluster, state.range(0));
    state.counters["bytes_per_task"] = static_cast<double>(HeapInUse() - before) / state.range(0);
    state.PauseTiming();
    core.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
// The byte count does not vary from run to run: one repetition is enough.
BENCHMARK(BM_QueuedMemory)
    ->ArgNames({"queued", "classes"})
    ->Args({10000, 10})
    ->Args({1000000, 100})
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace rc::coordinator

BENCHMARK_MAIN();
