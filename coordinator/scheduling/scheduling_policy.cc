#include "coordinator/scheduling/scheduling_policy.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rc::coordinator {
namespace {

bool HasTag(const pb::Capabilities& w, const std::string& tag) {
  return std::find(w.tags().begin(), w.tags().end(), tag) != w.tags().end();
}

// A worker with accepted_submitters runs only tasks of those owners (and so none of an
// unauthenticated loopback caller, whose owner is "").
bool AcceptsSubmitter(const pb::Capabilities& w, const std::string& owner) {
  if (w.accepted_submitters().empty()) return true;
  return std::find(w.accepted_submitters().begin(), w.accepted_submitters().end(), owner) !=
         w.accepted_submitters().end();
}

bool HasType(const pb::Capabilities& w, const std::string& type) {
  return std::find(w.task_types().begin(), w.task_types().end(), type) != w.task_types().end();
}

// Below this the difference in GB is rounding in the probe, not a real shortfall.
constexpr double kGbSlack = 0.05;

}  // namespace

std::string Mismatch(const pb::Capabilities& w, const ClassSpec& spec) {
  const pb::Requirements& r = spec.requirements;
  if (!r.target_device_id().empty() && r.target_device_id() != w.device_id()) {
    return absl::StrCat("is not target device '", r.target_device_id(), "'");
  }
  if (!HasType(w, spec.task_type)) {
    return absl::StrCat("does not run task type '", spec.task_type, "'");
  }
  if (r.min_cpu_cores() > w.cpu_cores()) {
    return absl::StrFormat("has %d CPU cores, needs %d", w.cpu_cores(), r.min_cpu_cores());
  }
  if (r.min_memory_gb() > w.memory_gb() + kGbSlack) {
    return absl::StrFormat("has %.1f GB RAM, needs %g", w.memory_gb(), r.min_memory_gb());
  }
  if (r.min_storage_gb() > w.storage_gb() + kGbSlack) {
    return absl::StrFormat("has %.1f GB free disk, needs %g", w.storage_gb(), r.min_storage_gb());
  }
  if (r.gpu_required() && !w.gpu()) return "has no GPU";
  if (r.internet_required() && !w.internet()) return "has no internet access";
  if (!r.required_platform().empty() && r.required_platform() != w.platform()) {
    return absl::StrCat("is platform ", w.platform(), ", needs ", r.required_platform());
  }
  if (!r.required_role().empty() && r.required_role() != w.role()) {
    return absl::StrCat("has role ", w.role(), ", needs ", r.required_role());
  }
  for (const std::string& tag : r.required_tags()) {
    if (!HasTag(w, tag)) return absl::StrCat("lacks tag '", tag, "'");
  }
  if (!AcceptsSubmitter(w, spec.owner)) {
    return absl::StrCat("does not accept tasks of submitter '", spec.owner, "'");
  }
  return "";
}

bool CanRun(const pb::Capabilities& w, const ClassSpec& spec) {
  const pb::Requirements& r = spec.requirements;
  if (!r.target_device_id().empty() && r.target_device_id() != w.device_id()) return false;
  if (!HasType(w, spec.task_type)) return false;
  if (r.min_cpu_cores() > w.cpu_cores()) return false;
  if (r.min_memory_gb() > w.memory_gb() + kGbSlack) return false;
  if (r.min_storage_gb() > w.storage_gb() + kGbSlack) return false;
  if (r.gpu_required() && !w.gpu()) return false;
  if (r.internet_required() && !w.internet()) return false;
  if (!r.required_platform().empty() && r.required_platform() != w.platform()) return false;
  if (!r.required_role().empty() && r.required_role() != w.role()) return false;
  for (const std::string& tag : r.required_tags()) {
    if (!HasTag(w, tag)) return false;
  }
  return AcceptsSubmitter(w, spec.owner);
}

PlacementKey KeyFor(int running, int slots, bool warm) {
  return PlacementKey{static_cast<double>(running) / slots, !warm, running - slots};
}

int ChooseWorker(std::span<const WorkerView> workers, const ClassSpec& spec) {
  int best = -1;
  std::pair<PlacementKey, absl::string_view> best_key;  // lower wins; then device id
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerView& w = workers[i];
    if (!w.accepting || w.running >= w.capabilities->slots() || !CanRun(*w.capabilities, spec)) continue;
    std::pair<PlacementKey, absl::string_view> key(
        KeyFor(w.running, w.capabilities->slots(), w.last_task_type == spec.task_type), w.capabilities->device_id());
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
    if (!w.accepting) continue;
    ++accepting;
    std::string why = Mismatch(*w.capabilities, spec);
    if (why.empty()) return "";
    if (accepting <= 3) {
      absl::StrAppend(&details, accepting > 1 ? "; " : "", w.capabilities->device_id(), " ", why);
    }
  }
  if (accepting == 0) return "no worker is connected";
  if (accepting > 3) absl::StrAppend(&details, "; and ", accepting - 3, " more");
  return absl::StrCat("no connected worker can run it: ", details);
}

}  // namespace rc::coordinator
