#include "coordinator/scheduling/feasibility.h"

#include <algorithm>
#include <array>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rc::coordinator {
namespace {

using Caps = pb::Capabilities;

template <typename List>
bool Contains(const List& list, absl::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// The task type a worker offers when it runs browsers (Requirements.browser_required).
constexpr absl::string_view kBrowserTaskType = "browser";

// Below this the difference in GB is rounding in the probe, not a real shortfall.
constexpr double kGbSlack = 0.05;

// The first required tag the worker lacks, or null.
const std::string* MissingTag(const Caps& w, const ClassSpec& s) {
  for (const std::string& tag : s.requirements.required_tags()) {
    if (!Contains(w.tags(), tag)) return &tag;
  }
  return nullptr;
}

// The smallest task depth that may use the worker's free capacity: any when a slot of its
// own is free, else (only lent slots are) deeper than every waiting attempt there.
int32_t LendingFloor(const WorkerState& st) { return st.running < st.slots ? 0 : st.deepest_waiting + 1; }

// What a kNotNow row may read of the class: its depth.
struct Depth {
  int32_t depth = 0;
};

// A row as written: its predicate and explanation are lambdas (each of its own type), so
// that the checks below call them directly, inlined, as cheap as a hand-written chain of
// ifs; Check, the row as exported, holds pointers to the same lambdas. What a row must not
// read it takes as `const auto&`: the checks below pass Unused there (and a kNotNow row
// only the class's Depth), so a kInfeasible row that read the state (or a kNotNow row the
// capabilities or any of the class but its depth) would not compile.
struct Unused {};

template <typename Passes, typename Explain>
struct Row {
  absl::string_view name;
  Feasibility failure;
  Passes passes;
  Explain explain;
};
template <typename Passes, typename Explain>
Row(absl::string_view, Feasibility, Passes, Explain) -> Row<Passes, Explain>;

// The rows.
constexpr std::tuple kRowDefs = {
    Row{"target device", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.target_device_id().empty() || s.requirements.target_device_id() == w.device_id();
        },
        [](const Caps&, const auto&, const ClassSpec& s) {
          return absl::StrCat("is not target device '", s.requirements.target_device_id(), "'");
        }},
    Row{"task type", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) { return Contains(w.task_types(), s.task_type); },
        [](const Caps&, const auto&, const ClassSpec& s) {
          return absl::StrCat("does not run task type '", s.task_type, "'");
        }},
    Row{"browser", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return !s.requirements.browser_required() || Contains(w.task_types(), kBrowserTaskType);
        },
        [](const Caps&, const auto&, const ClassSpec&) {
          return std::string("runs no browsers (payload.browser needs a worker started with --allow browser "
                             "and Chromium installed)");
        }},
    Row{"cpu", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.min_cpu_cores() <= w.cpu_cores();
        },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrFormat("has %d CPU cores, needs %d", w.cpu_cores(), s.requirements.min_cpu_cores());
        }},
    Row{"memory", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.min_memory_gb() <= w.memory_gb() + kGbSlack;
        },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrFormat("has %.1f GB RAM, needs %g", w.memory_gb(), s.requirements.min_memory_gb());
        }},
    Row{"storage", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.min_storage_gb() <= w.storage_gb() + kGbSlack;
        },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrFormat("has %.1f GB free disk, needs %g", w.storage_gb(), s.requirements.min_storage_gb());
        }},
    Row{"gpu", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) { return !s.requirements.gpu_required() || w.gpu(); },
        [](const Caps&, const auto&, const ClassSpec&) { return std::string("has no GPU"); }},
    Row{"internet", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return !s.requirements.internet_required() || w.internet();
        },
        [](const Caps&, const auto&, const ClassSpec&) { return std::string("has no internet access"); }},
    Row{"platform", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.required_platform().empty() || s.requirements.required_platform() == w.platform();
        },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrCat("is platform ", w.platform(), ", needs ", s.requirements.required_platform());
        }},
    Row{"role", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return s.requirements.required_role().empty() || s.requirements.required_role() == w.role();
        },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrCat("has role ", w.role(), ", needs ", s.requirements.required_role());
        }},
    Row{"tags", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) { return MissingTag(w, s) == nullptr; },
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return absl::StrCat("lacks tag '", *MissingTag(w, s), "'");
        }},
    // A worker with accepted_submitters runs only tasks of those owners (and so none of an
    // unauthenticated loopback caller, whose owner is "").
    Row{"submitter", Feasibility::kInfeasible,
        [](const Caps& w, const auto&, const ClassSpec& s) {
          return w.accepted_submitters().empty() || Contains(w.accepted_submitters(), s.owner);
        },
        [](const Caps&, const auto&, const ClassSpec& s) {
          return absl::StrCat("does not accept tasks of submitter '", s.owner, "'");
        }},
    Row{"accepting", Feasibility::kNotNow,
        [](const auto&, const WorkerState& st, const auto&) { return st.accepting; },
        [](const auto&, const WorkerState&, const auto&) {
          return std::string("is not accepting tasks (offline or draining)");
        }},
    // Waiting attempts lend their slots (WorkerState): the free ones are those neither
    // running nor lent out.
    Row{"free slot", Feasibility::kNotNow,
        [](const auto&, const WorkerState& st, const auto&) { return st.running - st.waiting < st.slots; },
        [](const auto&, const WorkerState& st, const auto&) {
          if (st.waiting == 0) return absl::StrFormat("has no free slot (%d running, %d slots)", st.running, st.slots);
          return absl::StrFormat("has no free slot (%d running, %d of them waiting on their subtasks, %d slots)",
                                 st.running, st.waiting, st.slots);
        }},
    // Past this many waiting attempts a fan-out of waiting parents would start processes
    // without bound; a chain as deep as max_task_depth still fits on one slot.
    Row{"waiting cap", Feasibility::kNotNow,
        [](const auto&, const WorkerState& st, const auto&) { return st.waiting <= st.slots * st.max_task_depth; },
        [](const auto&, const WorkerState& st, const auto&) {
          return absl::StrFormat("has %d tasks waiting on their subtasks, past its cap of %d (max_task_depth %d per slot)",
                                 st.waiting, st.slots * st.max_task_depth, st.max_task_depth);
        }},
    // Reads the class's depth only (passed as Depth by the checks below).
    Row{"lent slot", Feasibility::kNotNow,
        [](const auto&, const WorkerState& st, const auto& s) { return s.depth >= LendingFloor(st); },
        [](const auto&, const WorkerState& st, const auto&) {
          const int lent = std::max(0, st.slots - (st.running - st.waiting));
          return absl::StrFormat("has %d free %s, lent by tasks waiting on their subtasks: only tasks deeper than "
                                 "depth %d may use %s",
                                 lent, lent == 1 ? "slot" : "slots", st.deepest_waiting, lent == 1 ? "it" : "them");
        }},
};

constexpr auto kRows = std::apply(
    [](const auto&... row) {
      using PassesFn = decltype(Check::passes);
      using ExplainFn = decltype(Check::explain);
      return std::array{Check{row.name, row.failure, static_cast<PassesFn>(row.passes),
                              static_cast<ExplainFn>(row.explain)}...};
    },
    kRowDefs);

// Where each kind of row sits in kRows.
constexpr size_t kFirstNotNow = 12;
constexpr size_t kAcceptingRow = 12;

constexpr bool RowsInOrder() {
  for (size_t i = 0; i < kRows.size(); ++i) {
    if (kRows[i].failure != (i < kFirstNotNow ? Feasibility::kInfeasible : Feasibility::kNotNow)) return false;
  }
  return kRows[kAcceptingRow].name == "accepting";
}
static_assert(RowsInOrder(), "kInfeasible rows first (kFirstNotNow of them), then kNotNow, with kAcceptingRow");

// The first failing row among kRows[First], kRows[First + 1], ... (one per index in `I`),
// or null. Unrolled at compile time: every predicate is called directly, stopping at the
// first that fails.
template <size_t First, typename CapsArg, typename StateArg, typename SpecArg, size_t... I>
const Check* FirstFailingOf(std::index_sequence<I...>, const CapsArg& w, const StateArg& st, const SpecArg& s) {
  const Check* failed = nullptr;
  (void)((std::get<First + I>(kRowDefs).passes(w, st, s) || (failed = &kRows[First + I], false)) && ...);
  return failed;
}

const Check* FirstInfeasible(const Caps& w, const ClassSpec& s) {
  return FirstFailingOf<0>(std::make_index_sequence<kFirstNotNow>(), w, Unused(), s);
}

const Check* FirstNotNow(const WorkerState& st, int32_t depth) {
  return FirstFailingOf<kFirstNotNow>(std::make_index_sequence<kRows.size() - kFirstNotNow>(), Unused(), st,
                                      Depth{depth});
}

}  // namespace

std::span<const Check> Checks() { return kRows; }

const Check* FirstFailure(const Caps& w, const WorkerState& st, const ClassSpec& s) {
  if (const Check* failed = FirstInfeasible(w, s)) return failed;
  return FirstNotNow(st, s.depth);
}

bool Feasible(const Caps& w, const WorkerState& st, const ClassSpec& s) {
  // The state rows first: they are cheaper, and in a busy cluster most workers fail one.
  return FirstNotNow(st, s.depth) == nullptr && FirstInfeasible(w, s) == nullptr;
}

Feasibility Evaluate(const Caps& w, const WorkerState& st, const ClassSpec& s) {
  const Check* failed = FirstFailure(w, st, s);
  return failed == nullptr ? Feasibility::kFeasible : failed->failure;
}

bool CanRun(const Caps& w, const ClassSpec& s) { return FirstInfeasible(w, s) == nullptr; }

std::string Mismatch(const Caps& w, const ClassSpec& s) {
  const Check* failed = FirstInfeasible(w, s);
  return failed == nullptr ? "" : failed->explain(w, WorkerState(), s);
}

bool Ready(const WorkerState& st, int32_t depth) { return FirstNotNow(st, depth) == nullptr; }

int32_t LowestReadyDepth(const WorkerState& st) {
  // The "lent slot" row is the only one reading the depth, and it passes from LendingFloor up.
  return Ready(st, std::numeric_limits<int32_t>::max()) ? LendingFloor(st) : -1;
}

bool Accepting(const WorkerState& st) { return std::get<kAcceptingRow>(kRowDefs).passes(Unused(), st, Unused()); }

}  // namespace rc::coordinator
