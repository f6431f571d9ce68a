#include <catch2/catch.hpp>

#include "coordinator/scheduling/scheduling_policy.h"

namespace rc::coordinator {
namespace {

pb::Capabilities Caps(const std::string& id, int slots = 2) {
  pb::Capabilities c;
  c.set_device_id(id);
  c.set_platform("linux");
  c.set_role("compute");
  c.set_cpu_cores(4);
  c.set_memory_gb(8);
  c.set_storage_gb(100);
  c.set_slots(slots);
  c.add_task_types("echo");
  c.add_task_types("sleep");
  c.add_tags("ssd");
  return c;
}

ClassSpec Spec(const std::string& type = "echo") {
  ClassSpec s;
  s.task_type = type;
  return s;
}

}  // namespace

TEST_CASE("CanRun checks every requirement and Mismatch names the failing one") {
  pb::Capabilities w = Caps("w1");
  ClassSpec s = Spec();
  CHECK(CanRun(w, s));
  CHECK(Mismatch(w, s).empty());

  struct Case {
    std::function<void(pb::Requirements*)> set;
    std::string expected;
  };
  std::vector<Case> cases = {
      {[](auto* r) { r->set_min_cpu_cores(8); }, "has 4 CPU cores, needs 8"},
      {[](auto* r) { r->set_min_memory_gb(16); }, "has 8.0 GB RAM, needs 16"},
      {[](auto* r) { r->set_min_storage_gb(500); }, "has 100.0 GB free disk, needs 500"},
      {[](auto* r) { r->set_gpu_required(true); }, "has no GPU"},
      {[](auto* r) { r->set_internet_required(true); }, "has no internet access"},
      {[](auto* r) { r->set_required_platform("android"); }, "is platform linux, needs android"},
      {[](auto* r) { r->set_required_role("mobile"); }, "has role compute, needs mobile"},
      {[](auto* r) { r->add_required_tags("gpu-box"); }, "lacks tag 'gpu-box'"},
      {[](auto* r) { r->set_target_device_id("w9"); }, "is not target device 'w9'"},
  };
  for (const Case& c : cases) {
    ClassSpec bad = Spec();
    c.set(&bad.requirements);
    CHECK_FALSE(CanRun(w, bad));
    CHECK(Mismatch(w, bad) == c.expected);
  }
  CHECK(Mismatch(w, Spec("command")) == "does not run task type 'command'");

  ClassSpec ok = Spec();
  ok.requirements.set_min_cpu_cores(4);
  ok.requirements.set_min_memory_gb(8);
  ok.requirements.add_required_tags("ssd");
  ok.requirements.set_target_device_id("w1");
  ok.requirements.set_required_role("compute");
  CHECK(CanRun(w, ok));
}

TEST_CASE("ChooseWorker prefers the least loaded eligible worker") {
  pb::Capabilities a = Caps("a", 4), b = Caps("b", 2), c = Caps("c", 2);
  std::vector<WorkerView> views = {{&a, 2, true, ""}, {&b, 0, true, ""}, {&c, 2, true, ""}};
  CHECK(ChooseWorker(views, Spec()) == 1);
  views[1].running = 2;  // b full; a at 0.5 is least loaded among those with room
  CHECK(ChooseWorker(views, Spec()) == 0);
  views[0].accepting = false;  // a draining; c is full: nobody
  CHECK(ChooseWorker(views, Spec()) == -1);
}

TEST_CASE("ChooseWorker keeps same-type affinity only when not busier") {
  pb::Capabilities a = Caps("a", 4), b = Caps("b", 4);
  std::vector<WorkerView> views = {{&a, 1, true, ""}, {&b, 1, true, "sleep"}};
  CHECK(ChooseWorker(views, Spec("sleep")) == 1);  // equal load: warm worker wins
  CHECK(ChooseWorker(views, Spec("echo")) == 0);   // no affinity: device id order
  views[1].running = 2;                            // warm worker now busier
  CHECK(ChooseWorker(views, Spec("sleep")) == 0);
}

TEST_CASE("ChooseWorker skips workers that cannot run the class") {
  pb::Capabilities a = Caps("a"), b = Caps("b");
  b.add_tags("gpu-box");
  std::vector<WorkerView> views = {{&a, 0, true, ""}, {&b, 1, true, ""}};
  ClassSpec s = Spec();
  s.requirements.add_required_tags("gpu-box");
  CHECK(ChooseWorker(views, s) == 1);
}

TEST_CASE("UnschedulableReason explains why nobody can run a class") {
  pb::Capabilities a = Caps("a"), b = Caps("b");
  ClassSpec s = Spec();
  CHECK(UnschedulableReason({}, s) == "no worker is connected");
  std::vector<WorkerView> views = {{&a, 2, true, ""}, {&b, 2, true, ""}};
  CHECK(UnschedulableReason(views, s).empty());  // busy is not unschedulable
  s.requirements.add_required_tags("gpu-box");
  CHECK(UnschedulableReason(views, s) == "no connected worker can run it: a lacks tag 'gpu-box'; b lacks tag 'gpu-box'");
  views[0].accepting = false;
  CHECK(UnschedulableReason(views, s) == "no connected worker can run it: b lacks tag 'gpu-box'");
}

}  // namespace rc::coordinator
