#include "coordinator/scheduling/scheduling_policy.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rc::coordinator {

PlacementKey KeyFor(int busy, int slots, bool warm) {
  return PlacementKey{static_cast<double>(busy) / slots, !warm, busy - slots};
}

int ChooseWorker(std::span<const WorkerView> workers, const ClassSpec& spec) {
  int best = -1;
  std::pair<PlacementKey, absl::string_view> best_key;  // lower wins; then device id
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerView& w = workers[i];
    if (!Feasible(*w.capabilities, StateOf(w), spec)) continue;
    std::pair<PlacementKey, absl::string_view> key(
        KeyFor(w.running - w.waiting, w.capabilities->slots(), w.last_task_type == spec.task_type), w.capabilities->device_id());
    if (best < 0 || key < best_key) {
      best = static_cast<int>(i);
      best_key = key;
    }
  }
  return best;
}

std::string UnschedulableReason(std::span<const WorkerView> workers, const ClassSpec& spec) {
  std::string details;
  int accepting = 0;
  for (const WorkerView& w : workers) {
    const WorkerState state = StateOf(w);
    if (!Accepting(state)) continue;  // says nothing about the class: it may come back
    ++accepting;
    const Check* failed = FirstFailure(*w.capabilities, state, spec);
    if (failed == nullptr || failed->failure == Feasibility::kNotNow) return "";  // busy is not unschedulable
    if (accepting <= 3) {
      absl::StrAppend(&details, accepting > 1 ? "; " : "", w.capabilities->device_id(), " ",
                      failed->explain(*w.capabilities, state, spec));
    }
  }
  if (accepting == 0) return "no worker is connected";
  if (accepting > 3) absl::StrAppend(&details, "; and ", accepting - 3, " more");
  return absl::StrCat("no connected worker can run it: ", details);
}

}  // namespace rc::coordinator
