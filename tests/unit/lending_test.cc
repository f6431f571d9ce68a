#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "coordinator/scheduling/feasibility.h"
#include "coordinator/scheduling/placement_index.h"
#include "coordinator/scheduling/scheduling_policy.h"

// Slot lending in the policy (DESIGN.md "Workflows", "No deadlock"): attempts waiting on
// their subtree lend their slots, to tasks deeper than they are, up to max_task_depth
// waiting attempts per slot.
namespace rc::coordinator {
namespace {

pb::Capabilities Worker(const std::string& id, int slots) {
  pb::Capabilities c;
  c.set_device_id(id);
  c.set_slots(slots);
  c.add_task_types("command");
  return c;
}

ClassSpec AtDepth(int32_t depth) {
  ClassSpec s;
  s.task_type = "command";
  s.depth = depth;
  return s;
}

// `running` attempts on the worker, `waiting` of them waiting, the deepest at `deepest`.
WorkerView View(const pb::Capabilities& caps, int running, int waiting, int32_t deepest, int32_t max_task_depth) {
  return WorkerView{.capabilities = &caps,
                    .running = running,
                    .accepting = true,
                    .last_task_type = "",
                    .waiting = waiting,
                    .deepest_waiting = deepest,
                    .max_task_depth = max_task_depth};
}

// Whether the worker in `view` may take a task of `spec`, asked of the scan and of the
// index (which must agree); `why` gets the first failing row's explanation.
bool Takes(const WorkerView& view, const ClassSpec& spec, std::string* why = nullptr) {
  const std::vector<WorkerView> views = {view};
  const bool scan = ChooseWorker(views, spec) == 0;
  PlacementIndex index(view.max_task_depth);
  const PlacementIndex::Handle h = index.Add(view.capabilities);
  index.AddClass(0, spec);
  index.Update(h, view.running, view.accepting, "", view.waiting, view.deepest_waiting);
  REQUIRE(index.Choose(0).has_value() == scan);
  const Check* failed = FirstFailure(*view.capabilities, StateOf(view), spec);
  REQUIRE((failed == nullptr) == scan);
  if (why != nullptr) *why = failed == nullptr ? "" : std::string(failed->name) + ": " +
                                                        failed->explain(*view.capabilities, StateOf(view), spec);
  return scan;
}

}  // namespace

TEST_CASE("A one-slot worker whose task waits takes a deeper task, not another top-level one") {
  const pb::Capabilities one = Worker("w1", 1);
  // Its only slot runs a top-level task (depth 0) that waits for its children.
  const WorkerView view = View(one, 1, 1, 0, 8);
  std::string why;
  CHECK(Takes(view, AtDepth(1)));
  CHECK(Takes(view, AtDepth(5)));
  CHECK_FALSE(Takes(view, AtDepth(0), &why));
  CHECK(why == "lent slot: has 1 free slot, lent by tasks waiting on their subtasks: only tasks deeper than depth 0 "
               "may use it");
  // Busy, not unfit: a task waiting for it is not told it can never run.
  CHECK(UnschedulableReason(std::vector<WorkerView>{view}, AtDepth(0)).empty());
  // Once the depth-1 child runs (not waiting), the worker is full for everyone.
  const WorkerView full = View(one, 2, 1, 0, 8);
  CHECK_FALSE(Takes(full, AtDepth(1), &why));
  CHECK(why == "free slot: has no free slot (2 running, 1 of them waiting on their subtasks, 1 slots)");
  // Without lending (max_task_depth 0) a waiting task keeps its slot.
  CHECK_FALSE(Takes(View(one, 1, 1, 0, 0), AtDepth(1), &why));
  CHECK(why.starts_with("waiting cap: "));
}

TEST_CASE("A slot of its own goes to a task of any depth, even while others wait") {
  const pb::Capabilities two = Worker("w2", 2);
  // 2 running, 1 waiting at depth 3: one slot of its own is free.
  const WorkerView view = View(two, 1, 1, 3, 8);
  CHECK(LowestReadyDepth(StateOf(view)) == 0);
  CHECK(Takes(view, AtDepth(0)));
  // 3 running, 2 waiting (deepest 3): the free slot is lent, so deeper than 3 only.
  const WorkerView lent = View(two, 3, 2, 3, 8);
  CHECK(LowestReadyDepth(StateOf(lent)) == 4);
  CHECK_FALSE(Takes(lent, AtDepth(3)));
  CHECK(Takes(lent, AtDepth(4)));
}

TEST_CASE("A chain as deep as max_task_depth runs on one slot, then the waiting cap stops the worker") {
  constexpr int32_t kMax = 8;
  const pb::Capabilities one = Worker("w1", 1);
  // Depth 0 runs; each task in turn waits for its child one level deeper, which the
  // lent slot takes: at depth k, the k tasks above it wait.
  for (int32_t k = 0; k <= kMax; ++k) {
    INFO("depth " << k);
    const WorkerView view = View(one, k, k, k - 1, kMax);
    CHECK(Takes(view, AtDepth(k)));
    if (k > 0) CHECK_FALSE(Takes(view, AtDepth(k - 1)));  // a sibling of a waiting task: no lent slot for it
  }
  // max_task_depth + 1 waiting attempts on one slot: past the cap, nothing more, however deep.
  std::string why;
  CHECK_FALSE(Takes(View(one, kMax + 1, kMax + 1, kMax, kMax), AtDepth(kMax + 1), &why));
  CHECK(why == "waiting cap: has 9 tasks waiting on their subtasks, past its cap of 8 (max_task_depth 8 per slot)");
}

TEST_CASE("The waiting cap is max_task_depth per slot") {
  const pb::Capabilities two = Worker("w2", 2);
  CHECK(Takes(View(two, 4, 4, 1, 2), AtDepth(2)));        // 4 waiting = 2 slots x 2
  CHECK_FALSE(Takes(View(two, 5, 5, 1, 2), AtDepth(2)));  // 5: one past
  CHECK(LowestReadyDepth(StateOf(View(two, 5, 5, 1, 2))) == -1);
}

TEST_CASE("Placement load counts only attempts that are not waiting") {
  const pb::Capabilities a = Worker("a", 2), b = Worker("b", 2);
  // a: 2 running, both waiting at depth 0 (load 0); b: 1 running, not waiting (load 0.5).
  const std::vector<WorkerView> views = {View(a, 2, 2, 0, 8), View(b, 1, 0, -1, 8)};
  CHECK(ChooseWorker(views, AtDepth(1)) == 0);  // the lent slots of a: the lower load
  CHECK(ChooseWorker(views, AtDepth(0)) == 1);  // a's slots are lent to deeper tasks only
  CHECK(KeyFor(2 - 2, 2, true) < KeyFor(1, 2, true));
}

TEST_CASE("LowestReadyDepth is exactly where Ready starts to hold") {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000; ++i) {
    WorkerState st;
    st.slots = 1 + static_cast<int>(rng() % 3);
    st.accepting = rng() % 6 != 0;
    st.max_task_depth = static_cast<int32_t>(rng() % 3);
    st.waiting = static_cast<int>(rng() % (2 * st.slots + 2));
    st.deepest_waiting = st.waiting > 0 ? static_cast<int32_t>(rng() % 4) : -1;
    st.running = st.waiting + static_cast<int>(rng() % (st.slots + 1));
    const int32_t lowest = LowestReadyDepth(st);
    for (int32_t d = 0; d < 8; ++d) {
      INFO("running " << st.running << " waiting " << st.waiting << " deepest " << st.deepest_waiting << " depth " << d);
      REQUIRE(Ready(st, d) == (lowest >= 0 && d >= lowest));
    }
  }
}

}  // namespace rc::coordinator
