#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduling/placement_index.h"

namespace rc::coordinator {
namespace {

pb::Capabilities RandomCaps(std::mt19937& rng, const std::string& id) {
  pb::Capabilities c;
  c.set_device_id(id);
  c.set_slots(1 + rng() % 3);
  c.set_cpu_cores(1 + rng() % 4);
  c.set_platform(rng() % 3 == 0 ? "darwin" : "linux");
  c.add_task_types("echo");
  if (rng() % 2 == 0) c.add_task_types("sleep");
  if (rng() % 2 == 0) c.add_tags("ssd");
  return c;
}

ClassSpec RandomClass(std::mt19937& rng, int workers) {
  ClassSpec s;
  s.task_type = rng() % 2 == 0 ? "echo" : "sleep";
  s.requirements.set_min_cpu_cores(rng() % 4);
  if (rng() % 3 == 0) s.requirements.set_required_platform("linux");
  if (rng() % 3 == 0) s.requirements.add_required_tags("ssd");
  if (rng() % 8 == 0) s.requirements.set_target_device_id(absl::StrCat("w", rng() % workers));
  return s;
}

// The index and a plain list of views go through the same random changes; after each,
// the index must name the worker ChooseWorker picks from the list, for every class.
TEST_CASE("PlacementIndex agrees with ChooseWorker through random changes") {
  std::mt19937 rng(1);
  constexpr int kWorkers = 40;
  std::deque<pb::Capabilities> caps;  // stable addresses
  std::vector<WorkerView> views;
  std::vector<ClassSpec> classes;
  PlacementIndex index;
  auto add_worker = [&] {
    const int n = static_cast<int>(caps.size());
    caps.push_back(RandomCaps(rng, absl::StrCat("w", n)));
    views.push_back(WorkerView{&caps.back(), 0, false, ""});
    CHECK(index.Add(&caps.back()) == static_cast<PlacementIndex::Handle>(n));
  };
  auto add_class = [&] {
    classes.push_back(RandomClass(rng, kWorkers));
    index.AddClass(static_cast<ClassId>(classes.size() - 1), classes.back());
  };
  for (int i = 0; i < kWorkers / 2; ++i) add_worker();
  for (int i = 0; i < 5; ++i) add_class();

  for (int step = 0; step < 3000; ++step) {
    const size_t h = rng() % views.size();
    WorkerView& v = views[h];
    switch (rng() % 10) {
      case 0:
        if (caps.size() < kWorkers) add_worker();
        break;
      case 1:
        if (classes.size() < 12) add_class();
        break;
      case 2:  // re-registration with other capabilities
        caps[h] = RandomCaps(rng, caps[h].device_id());
        v.running = std::min(v.running, caps[h].slots());
        index.CapabilitiesChanged(static_cast<PlacementIndex::Handle>(h));
        break;
      case 3:
        v.accepting = !v.accepting;
        break;
      default:  // a placement or a finish
        if (rng() % 2 == 0 && v.running < caps[h].slots()) {
          ++v.running;
          v.last_task_type = rng() % 2 == 0 ? "echo" : "sleep";
        } else if (v.running > 0) {
          --v.running;
        }
    }
    index.Update(static_cast<PlacementIndex::Handle>(h), v.running, v.accepting, v.last_task_type);

    int free = 0;
    for (const WorkerView& w : views) free += w.accepting && w.running < w.capabilities->slots();
    REQUIRE(index.free_workers() == free);
    for (size_t c = 0; c < classes.size(); ++c) {
      const int expected = ChooseWorker(views, classes[c]);
      std::optional<PlacementIndex::Handle> got = index.Choose(static_cast<ClassId>(c));
      REQUIRE(got.has_value() == (expected >= 0));
      if (got) REQUIRE(*got == static_cast<PlacementIndex::Handle>(expected));
      REQUIRE(index.Runnable(static_cast<ClassId>(c)) == UnschedulableReason(views, classes[c]).empty());
    }
  }
}

// The same with slot lending: attempts start and stop waiting on their subtree (their
// slots lent, with the depth of the deepest), and classes have depths, so that a worker
// whose free slots are all lent serves only classes deeper than its waiting attempts.
TEST_CASE("PlacementIndex agrees with ChooseWorker through random changes with lent slots") {
  std::mt19937 rng(7);
  constexpr int kWorkers = 30;
  constexpr int32_t kMaxTaskDepth = 2;
  std::deque<pb::Capabilities> caps;  // stable addresses
  std::vector<WorkerView> views;
  std::vector<ClassSpec> classes;
  PlacementIndex index(kMaxTaskDepth);
  for (int i = 0; i < kWorkers; ++i) {
    caps.push_back(RandomCaps(rng, absl::StrCat("w", i)));
    views.push_back(WorkerView{.capabilities = &caps.back(),
                               .running = 0,
                               .accepting = rng() % 4 != 0,
                               .last_task_type = "",
                               .max_task_depth = kMaxTaskDepth});
    index.Update(index.Add(&caps.back()), 0, views.back().accepting, "");
  }
  for (int c = 0; c < 12; ++c) {
    classes.push_back(RandomClass(rng, kWorkers));
    classes.back().depth = static_cast<int32_t>(rng() % 4);
    index.AddClass(static_cast<ClassId>(c), classes.back());
  }

  std::map<int32_t, int> lent_only_choices;  // by class depth: picks of a worker with no slot of its own free
  for (int step = 0; step < 4000; ++step) {
    const size_t h = rng() % views.size();
    WorkerView& v = views[h];
    const int slots = caps[h].slots();
    switch (rng() % 8) {
      case 0:
        v.accepting = !v.accepting;
        break;
      case 1:
      case 2:  // a running attempt starts waiting, at some depth
        if (v.waiting < v.running && v.waiting <= slots * kMaxTaskDepth) {
          ++v.waiting;
          v.deepest_waiting = std::max(v.deepest_waiting, static_cast<int32_t>(rng() % 3));
        }
        break;
      case 3:  // the waiting ones stop waiting
        v.waiting = 0;
        v.deepest_waiting = -1;
        break;
      default:  // a placement (as the policy allows it) or a finish of an attempt not waiting
        if (rng() % 2 == 0) {
          const ClassSpec& cls = classes[rng() % classes.size()];
          const std::vector<WorkerView> one = {v};
          if (ChooseWorker(one, cls) == 0) {
            ++v.running;
            v.last_task_type = cls.task_type;
          }
        } else if (v.running > v.waiting) {
          --v.running;
        }
    }
    index.Update(static_cast<PlacementIndex::Handle>(h), v.running, v.accepting, v.last_task_type, v.waiting,
                 v.deepest_waiting);

    int free = 0;
    for (const WorkerView& w : views) free += LowestReadyDepth(StateOf(w)) >= 0;
    REQUIRE(index.free_workers() == free);
    for (size_t c = 0; c < classes.size(); ++c) {
      const int expected = ChooseWorker(views, classes[c]);
      std::optional<PlacementIndex::Handle> got = index.Choose(static_cast<ClassId>(c));
      REQUIRE(got.has_value() == (expected >= 0));
      if (!got) continue;
      REQUIRE(*got == static_cast<PlacementIndex::Handle>(expected));
      if (views[expected].running >= caps[expected].slots()) ++lent_only_choices[classes[c].depth];
    }
  }
  // Lent slots were chosen, and only for tasks deeper than depth 0.
  CHECK_FALSE(lent_only_choices.contains(0));
  CHECK(lent_only_choices.size() >= 2);
}

TEST_CASE("PlacementIndex breaks ties by device id and prefers warm workers") {
  pb::Capabilities a, b;
  for (auto [c, id] : {std::pair{&a, "b-second"}, std::pair{&b, "a-first"}}) {
    c->set_device_id(id);
    c->set_slots(2);
    c->add_task_types("echo");
    c->add_task_types("sleep");
  }
  PlacementIndex index;
  PlacementIndex::Handle ha = index.Add(&a), hb = index.Add(&b);
  ClassSpec sleep;
  sleep.task_type = "sleep";
  index.AddClass(0, sleep);
  CHECK_FALSE(index.Choose(0).has_value());  // nobody accepts yet
  CHECK_FALSE(index.Runnable(0));
  index.Update(ha, 1, true, "");
  index.Update(hb, 1, true, "");
  CHECK(index.Choose(0) == hb);  // equal load: the smaller device id
  index.Update(ha, 1, true, "sleep");
  CHECK(index.Choose(0) == ha);  // equal load: the worker that last ran this type
  index.Update(ha, 2, true, "sleep");
  CHECK(index.Choose(0) == hb);  // a is full
}

TEST_CASE("PlacementIndex keeps device id order when labels run out") {
  // Each new id sorts just after "a" and before the previous new one ("a1", "a01",
  // "a001", ...), halving the room between their labels until none is left and every
  // label is spread out again.
  std::deque<pb::Capabilities> caps;
  std::vector<WorkerView> views;
  PlacementIndex index;
  ClassSpec echo;
  echo.task_type = "echo";
  index.AddClass(0, echo);
  auto add = [&](const std::string& id) {
    pb::Capabilities& c = caps.emplace_back();
    c.set_device_id(id);
    c.set_slots(1);
    c.add_task_types("echo");
    index.Update(index.Add(&c), 0, true, "");
    views.push_back(WorkerView{&c, 0, true, ""});
  };
  add("a");
  add("b");
  std::string id = "a1";
  for (int i = 0; i < 100; ++i, id.insert(1, "0")) add(id);
  // Equal load everywhere: taking the chosen worker out each time lists device id order.
  for (size_t taken = 0; taken < views.size(); ++taken) {
    const int expected = ChooseWorker(views, echo);
    REQUIRE(expected >= 0);
    REQUIRE(index.Choose(0) == static_cast<PlacementIndex::Handle>(expected));
    views[expected].running = 1;
    index.Update(expected, 1, true, "echo");
  }
  CHECK_FALSE(index.Choose(0).has_value());
}

}  // namespace
}  // namespace rc::coordinator
