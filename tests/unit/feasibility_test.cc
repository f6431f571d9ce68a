#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduling/feasibility.h"
#include "coordinator/scheduling/placement_index.h"
#include "coordinator/scheduling/scheduling_policy.h"

// The feasibility table: each row filters and explains, and the two uses (ChooseWorker /
// PlacementIndex / CanRun on one side, FirstFailure / Mismatch / UnschedulableReason on the
// other) agree.
namespace rc::coordinator {
namespace {

// A worker that passes every row for Demanding(): each requirement met, with room.
pb::Capabilities Fit() {
  pb::Capabilities c;
  c.set_device_id("w1");
  c.set_platform("linux");
  c.set_role("compute");
  c.set_cpu_cores(4);
  c.set_memory_gb(8);
  c.set_storage_gb(100);
  c.set_gpu(true);
  c.set_internet(true);
  c.set_slots(2);
  c.add_task_types("echo");
  c.add_task_types("browser");
  c.add_tags("ssd");
  c.add_tags("eu");
  c.add_accepted_submitters("alice");
  return c;
}

// A class that sets every requirement, so that every kInfeasible row has something to check.
ClassSpec Demanding() {
  ClassSpec s;
  s.task_type = "echo";
  s.owner = "alice";
  pb::Requirements& r = s.requirements;
  r.set_target_device_id("w1");
  r.set_min_cpu_cores(2);
  r.set_min_memory_gb(4);
  r.set_min_storage_gb(50);
  r.set_gpu_required(true);
  r.set_internet_required(true);
  r.set_required_platform("linux");
  r.set_required_role("compute");
  r.add_required_tags("ssd");
  r.set_browser_required(true);
  return s;
}

WorkerState Idle() { return WorkerState{0, 2, true}; }

// How to make a fit worker fail exactly one row, and what the explanation must then say.
struct Breaker {
  std::function<void(pb::Capabilities&, WorkerState&, ClassSpec&)> apply;
  std::string why;
};

const std::map<std::string, Breaker>& Breakers() {
  static const auto* breakers = new std::map<std::string, Breaker>{
      {"target device", {[](auto&, auto&, auto& s) { s.requirements.set_target_device_id("w9"); },
                         "is not target device 'w9'"}},
      {"task type", {[](auto&, auto&, auto& s) { s.task_type = "command"; }, "does not run task type 'command'"}},
      {"browser", {[](auto& c, auto&, auto&) {
                     c.clear_task_types();
                     c.add_task_types("echo");
                   },
                   "runs no browsers (payload.browser needs a worker started with --allow browser and Chromium "
                   "installed)"}},
      {"cpu", {[](auto& c, auto&, auto&) { c.set_cpu_cores(1); }, "has 1 CPU cores, needs 2"}},
      {"memory", {[](auto& c, auto&, auto&) { c.set_memory_gb(3.9); }, "has 3.9 GB RAM, needs 4"}},
      {"storage", {[](auto& c, auto&, auto&) { c.set_storage_gb(10); }, "has 10.0 GB free disk, needs 50"}},
      {"gpu", {[](auto& c, auto&, auto&) { c.set_gpu(false); }, "has no GPU"}},
      {"internet", {[](auto& c, auto&, auto&) { c.set_internet(false); }, "has no internet access"}},
      {"platform", {[](auto& c, auto&, auto&) { c.set_platform("darwin"); }, "is platform darwin, needs linux"}},
      {"role", {[](auto& c, auto&, auto&) { c.set_role("storage"); }, "has role storage, needs compute"}},
      {"tags", {[](auto&, auto&, auto& s) { s.requirements.add_required_tags("gpu-box"); }, "lacks tag 'gpu-box'"}},
      {"submitter", {[](auto&, auto&, auto& s) { s.owner = "mallory"; },
                     "does not accept tasks of submitter 'mallory'"}},
      {"accepting", {[](auto&, auto& st, auto&) { st.accepting = false; },
                     "is not accepting tasks (offline or draining)"}},
      {"free slot", {[](auto&, auto& st, auto&) { st.running = 2; }, "has no free slot (2 running, 2 slots)"}},
      // 3 waiting attempts, 1 more than 2 slots x max_task_depth 1 allow.
      {"waiting cap", {[](auto&, auto& st, auto& s) {
                         st.max_task_depth = 1;
                         st.running = st.waiting = 3;
                         st.deepest_waiting = 0;
                         s.depth = 1;
                       },
                       "has 3 tasks waiting on their subtasks, past its cap of 2 (max_task_depth 1 per slot)"}},
      // 3 running, 2 of them waiting (the deepest at depth 2): 1 slot free, lent; a depth-0 task may not use it.
      {"lent slot", {[](auto&, auto& st, auto&) {
                       st.max_task_depth = 8;
                       st.running = 3;
                       st.waiting = 2;
                       st.deepest_waiting = 2;
                     },
                     "has 1 free slot, lent by tasks waiting on their subtasks: only tasks deeper than depth 2 may use it"}},
  };
  return *breakers;
}

WorkerView ViewOf(const pb::Capabilities& caps, const WorkerState& st) {
  return WorkerView{.capabilities = &caps,
                    .running = st.running,
                    .accepting = st.accepting,
                    .last_task_type = "",
                    .waiting = st.waiting,
                    .deepest_waiting = st.deepest_waiting,
                    .max_task_depth = st.max_task_depth};
}

// The placement index's answers for one worker and one class: (Choose has a worker, Runnable).
std::pair<bool, bool> IndexSays(const pb::Capabilities& caps, const WorkerState& st, const ClassSpec& spec) {
  PlacementIndex index(st.max_task_depth);
  const PlacementIndex::Handle h = index.Add(&caps);
  index.AddClass(0, spec);
  index.Update(h, st.running, st.accepting, "", st.waiting, st.deepest_waiting);
  return {index.Choose(0).has_value(), index.Runnable(0)};
}

}  // namespace

TEST_CASE("A worker passing every row is kept by every filter") {
  const pb::Capabilities caps = Fit();
  const ClassSpec spec = Demanding();
  const WorkerState st = Idle();
  CHECK(FirstFailure(caps, st, spec) == nullptr);
  CHECK(Evaluate(caps, st, spec) == Feasibility::kFeasible);
  CHECK(Feasible(caps, st, spec));
  CHECK(CanRun(caps, spec));
  CHECK(Mismatch(caps, spec).empty());
  CHECK(Ready(st));
  CHECK(Accepting(st));
  const std::vector<WorkerView> views = {ViewOf(caps, st)};
  CHECK(ChooseWorker(views, spec) == 0);
  CHECK(UnschedulableReason(views, spec).empty());
  CHECK(IndexSays(caps, st, spec) == std::pair{true, true});
}

TEST_CASE("Each row alone filters a worker out and its explanation names that check") {
  // Every row has a breaker and every breaker a row: a new row without a test fails here.
  std::vector<std::string> names;
  for (const Check& row : Checks()) names.emplace_back(row.name);
  std::vector<std::string> tested;
  for (const auto& [name, breaker] : Breakers()) tested.push_back(name);
  std::sort(names.begin(), names.end());
  CHECK(names == tested);

  for (const Check& row : Checks()) {
    SECTION(std::string(row.name)) {
      pb::Capabilities caps = Fit();
      WorkerState st = Idle();
      ClassSpec spec = Demanding();
      const Breaker& breaker = Breakers().at(std::string(row.name));
      breaker.apply(caps, st, spec);

      // Only this row fails.
      for (const Check& other : Checks()) CHECK(other.passes(caps, st, spec) == (&other != &row));
      // Explained: the row, its kind and its sentence.
      REQUIRE(FirstFailure(caps, st, spec) == &row);
      CHECK(row.explain(caps, st, spec) == breaker.why);
      CHECK(Evaluate(caps, st, spec) == row.failure);
      CHECK_FALSE(Feasible(caps, st, spec));
      // Filtered out, by the scan and by the index.
      const std::vector<WorkerView> views = {ViewOf(caps, st)};
      CHECK(ChooseWorker(views, spec) == -1);
      const auto [chosen, runnable] = IndexSays(caps, st, spec);
      CHECK_FALSE(chosen);

      if (row.failure == Feasibility::kInfeasible) {
        // Never here: the capability half says so, and a waiting task is told why.
        CHECK_FALSE(CanRun(caps, spec));
        CHECK(Mismatch(caps, spec) == breaker.why);
        CHECK(Ready(st));
        CHECK_FALSE(runnable);
        CHECK(UnschedulableReason(views, spec) == absl::StrCat("no connected worker can run it: w1 ", breaker.why));
      } else {
        // Not now: the worker could run the class, so a task waits without a reason
        // (busy), or the worker is not counted at all (offline or draining).
        CHECK(row.failure == Feasibility::kNotNow);
        CHECK(CanRun(caps, spec));
        CHECK(Mismatch(caps, spec).empty());
        CHECK_FALSE(Ready(st));
        CHECK(runnable == Accepting(st));
        CHECK(UnschedulableReason(views, spec) == (Accepting(st) ? "" : "no worker is connected"));
      }
    }
  }
}

TEST_CASE("A worker both busy and unfit is reported unfit") {
  pb::Capabilities caps = Fit();
  caps.set_gpu(false);
  const WorkerState busy{2, 2, true};
  const ClassSpec spec = Demanding();
  CHECK(Evaluate(caps, busy, spec) == Feasibility::kInfeasible);
  CHECK(FirstFailure(caps, busy, spec)->name == "gpu");
  const std::vector<WorkerView> views = {ViewOf(caps, busy)};
  CHECK(UnschedulableReason(views, spec) == "no connected worker can run it: w1 has no GPU");
}

namespace {

template <typename T>
T Pick(std::mt19937& rng, std::initializer_list<T> items) {
  return items.begin()[rng() % items.size()];
}

pb::Capabilities RandomWorker(std::mt19937& rng, int i) {
  pb::Capabilities c;
  c.set_device_id(absl::StrCat("w", i));
  c.set_platform(Pick<std::string>(rng, {"linux", "linux", "darwin"}));
  c.set_role(Pick<std::string>(rng, {"compute", "compute", "storage"}));
  c.set_cpu_cores(1 + rng() % 8);
  c.set_memory_gb(Pick(rng, {2.0, 3.96, 4.0, 8.0}));
  c.set_storage_gb(Pick(rng, {10.0, 49.98, 100.0}));
  c.set_gpu(rng() % 3 == 0);
  c.set_internet(rng() % 4 != 0);
  c.set_slots(1 + rng() % 3);
  c.add_task_types("echo");
  if (rng() % 2 == 0) c.add_task_types("sleep");
  if (rng() % 3 == 0) c.add_task_types("browser");
  if (rng() % 2 == 0) c.add_tags("ssd");
  if (rng() % 2 == 0) c.add_tags("eu");
  if (rng() % 4 == 0) c.add_accepted_submitters(Pick<std::string>(rng, {"alice", "bob"}));
  return c;
}

ClassSpec RandomSpec(std::mt19937& rng, int workers) {
  ClassSpec s;
  s.task_type = Pick<std::string>(rng, {"echo", "echo", "sleep"});
  s.owner = Pick<std::string>(rng, {"alice", "bob", ""});
  pb::Requirements& r = s.requirements;
  if (rng() % 6 == 0) r.set_target_device_id(absl::StrCat("w", rng() % workers));
  r.set_min_cpu_cores(Pick(rng, {0, 0, 2, 4}));
  r.set_min_memory_gb(Pick(rng, {0.0, 4.0, 8.0}));
  r.set_min_storage_gb(Pick(rng, {0.0, 50.0}));
  r.set_gpu_required(rng() % 4 == 0);
  r.set_browser_required(rng() % 4 == 0);
  r.set_internet_required(rng() % 3 == 0);
  r.set_required_platform(Pick<std::string>(rng, {"", "", "linux"}));
  r.set_required_role(Pick<std::string>(rng, {"", "", "compute"}));
  if (rng() % 3 == 0) r.add_required_tags("ssd");
  if (rng() % 4 == 0) r.add_required_tags("eu");
  return s;
}

}  // namespace

TEST_CASE("Filtering and explaining agree for every row over generated workers") {
  std::mt19937 rng(13);
  constexpr int kWorkers = 120;
  constexpr int kClasses = 40;
  std::deque<pb::Capabilities> caps;  // stable addresses for the views and the index
  std::vector<WorkerState> states;
  std::vector<WorkerView> views;
  constexpr int32_t kMaxTaskDepth = 1;  // so that some workers pass the waiting cap and some do not
  PlacementIndex index(kMaxTaskDepth);
  for (int i = 0; i < kWorkers; ++i) {
    caps.push_back(RandomWorker(rng, i));
    const int slots = caps.back().slots();
    WorkerState st{static_cast<int>(rng() % (slots + 1)), slots, rng() % 5 != 0};
    st.max_task_depth = kMaxTaskDepth;
    if (rng() % 2 == 0) {  // some attempts wait on their subtree, lending their slots
      st.waiting = static_cast<int>(rng() % (2 * slots + 1));
      st.deepest_waiting = st.waiting > 0 ? static_cast<int32_t>(rng() % 3) : -1;
      st.running += st.waiting;
    }
    states.push_back(st);
    views.push_back(ViewOf(caps.back(), st));
    const PlacementIndex::Handle h = index.Add(&caps.back());
    index.Update(h, st.running, st.accepting, "", st.waiting, st.deepest_waiting);
  }
  std::vector<ClassSpec> specs;
  for (int c = 0; c < kClasses; ++c) {
    specs.push_back(RandomSpec(rng, kWorkers));
    index.AddClass(static_cast<ClassId>(c), specs.back());
  }

  std::map<std::string, std::pair<int, int>> seen;  // row -> (times failed, times passed)
  for (int c = 0; c < kClasses; ++c) {
    const ClassSpec& spec = specs[c];
    bool any_feasible = false, any_runnable = false;
    for (int w = 0; w < kWorkers; ++w) {
      const pb::Capabilities& cap = caps[w];
      const WorkerState& st = states[w];
      const Check* first = FirstFailure(cap, st, spec);
      // The explanation is the first row in table order whose predicate fails, and it
      // says something; every earlier row passes.
      bool before = true;
      for (const Check& row : Checks()) {
        const bool passes = row.passes(cap, st, spec);
        (passes ? seen[std::string(row.name)].second : seen[std::string(row.name)].first)++;
        if (&row == first) {
          REQUIRE_FALSE(passes);
          REQUIRE_FALSE(row.explain(cap, st, spec).empty());
          before = false;
        } else if (before) {
          REQUIRE(passes);
        }
      }
      // Filters agree with the explanation, worker by worker.
      const std::vector<WorkerView> one = {views[w]};
      REQUIRE(Feasible(cap, st, spec) == (first == nullptr));
      REQUIRE((ChooseWorker(one, spec) == 0) == (first == nullptr));
      REQUIRE(CanRun(cap, spec) == (first == nullptr || first->failure == Feasibility::kNotNow));
      REQUIRE(CanRun(cap, spec) == Mismatch(cap, spec).empty());
      if (CanRun(cap, spec)) REQUIRE(Ready(st) == (first == nullptr));
      REQUIRE(UnschedulableReason(one, spec).empty() == (Accepting(st) && CanRun(cap, spec)));
      any_feasible |= first == nullptr;
      any_runnable |= Accepting(st) && CanRun(cap, spec);
    }
    // And over the whole set: the scan, the index and the explanation.
    const int chosen = ChooseWorker(views, spec);
    REQUIRE((chosen >= 0) == any_feasible);
    if (chosen >= 0) REQUIRE(FirstFailure(caps[chosen], states[chosen], spec) == nullptr);
    std::optional<PlacementIndex::Handle> indexed = index.Choose(static_cast<ClassId>(c));
    REQUIRE(indexed.has_value() == any_feasible);
    if (indexed) REQUIRE(*indexed == static_cast<PlacementIndex::Handle>(chosen));
    REQUIRE(index.Runnable(static_cast<ClassId>(c)) == any_runnable);
    REQUIRE(UnschedulableReason(views, spec).empty() == any_runnable);
  }
  // The generator exercised every row both ways.
  for (const Check& row : Checks()) {
    INFO(row.name);
    CHECK(seen[std::string(row.name)].first > 0);
    CHECK(seen[std::string(row.name)].second > 0);
  }
}

}  // namespace rc::coordinator
