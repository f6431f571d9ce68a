#pragma once
// Gives ChooseWorker's answer (scheduling_policy.h) for a scheduling class without
// scanning every worker: at 10k workers a scan costs ~300 us a decision.
//
// The rules are the feasibility table's (feasibility.h): workers that can run exactly the
// same indexed classes form a group (its kInfeasible rows, CanRun, evaluated once per
// worker and class), and a cluster of 10k machines has far fewer
// distinct kinds than machines. Each group keeps its members that can take a task now
// (its kNotNow rows pass: Ready) ordered by PlacementKey and device id, with its best member
// overall and its best member per last task type at hand. A decision compares the best
// member of each group that can run the class; a worker's change re-sorts it within its
// group. Device ids are compared as integer labels in the same order, so that comparing
// two candidates reads no string.
//
// Slot lending (feasibility.h, "lent slot") makes readiness depend on the class's depth:
// a worker whose free slots are all lent by waiting attempts takes only tasks deeper than
// those. So each group keeps its ready members in tiers by LowestReadyDepth: tier 0 holds
// workers with a slot of their own free (every class), tier d + 1 those whose free slots
// are lent by attempts at most d deep. A decision for a class at depth D looks at tiers
// 0..D of each group; without waiting attempts every member is in tier 0, as before.
//
// Design assumptions: capabilities change rarely (on registration), running counts on
// every placement and finish. A decision costs one comparison per group that can run the
// class (~20 in a fleet of 100 machine kinds, thousands if every machine differs); a
// change, a few B-tree operations in one group. Not thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "coordinator/scheduling/scheduling_policy.h"

namespace rc::coordinator {

class PlacementIndex {
 public:
  using Handle = uint32_t;  // a worker, numbered from 0 in the order of Add

  // `max_task_depth`: waiting attempts allowed per slot (WorkerState; 0: no lending).
  explicit PlacementIndex(int32_t max_task_depth = 0) : max_task_depth_(max_task_depth) {}

  // A worker whose capabilities are at `caps` (read again on CapabilitiesChanged; they
  // must outlive the index). It takes no task until Update says it accepts.
  Handle Add(const pb::Capabilities* caps);
  // Re-reads the worker's capabilities: which classes it can run, its slots.
  void CapabilitiesChanged(Handle h);
  // The worker's placement state, as in WorkerView.
  void Update(Handle h, int running, bool accepting, absl::string_view last_task_type, int waiting = 0,
              int32_t deepest_waiting = -1);

  bool HasClass(ClassId id) const { return id < classes_.size() && classes_[id] != nullptr; }
  // Starts indexing a class: CanRun for every worker.
  void AddClass(ClassId id, const ClassSpec& spec);
  // ChooseWorker over every worker for an indexed class: the worker passing every row of
  // the feasibility table and has the lowest PlacementKey, if any.
  std::optional<Handle> Choose(ClassId id) const;
  // Whether some accepting worker (the "accepting" row) can run the indexed class, busy or not.
  bool Runnable(ClassId id) const { return classes_[id]->accepting > 0; }
  // Accepting workers with a free slot (their own, or lent for some depth).
  int free_workers() const { return free_workers_; }

 private:
  using GroupId = uint32_t;
  using TypeId = uint32_t;  // a task type, interned; 0 is "" (nothing placed yet)
  static constexpr Handle kNoWorker = UINT32_MAX;
  static constexpr GroupId kNoGroup = UINT32_MAX;
  static constexpr int32_t kNoTier = INT32_MAX;

  // A member that can take a task now, keyed as if it had last run the class's type.
  struct Member {
    PlacementKey key;
    uint64_t label = 0;
    Handle worker = kNoWorker;  // kNoWorker: none
    TypeId last_type = 0;
    friend auto operator<=>(const Member&, const Member&) = default;
  };
  // A candidate for one class: a worker, its key for the class's type and its label.
  struct Candidate {
    PlacementKey key;
    uint64_t label = 0;
    Handle worker = kNoWorker;
  };
  // The members of a group that can take a task now, of one LowestReadyDepth.
  struct Tier {
    Member best;                    // of `free` (none when empty)
    std::vector<Member> best_warm;  // by TypeId: the best member that last ran that type
    absl::btree_set<Member> free;   // best first
    absl::btree_set<std::pair<TypeId, Member>> warm;  // the same, by last task type first
  };
  struct Group {
    Tier own;                       // tier 0: inline, as every decision reads it
    std::vector<Tier> lent;         // tiers 1, 2, ... (lent[d] is tier d + 1)
    int32_t lowest = kNoTier;       // the lowest tier with a member
    std::vector<ClassId> classes;   // the indexed classes its members can run
    std::string signature;          // per indexed class (in order of AddClass): '1' if so
    int accepting = 0;
  };
  struct Class {
    TypeId type = 0;
    std::vector<GroupId> groups;  // that can run it
    int accepting = 0;            // accepting workers that can run it
    int free_groups = 0;          // of `groups`, those with a member that can take a task of it now
    ClassSpec spec;
  };
  struct Worker {
    const pb::Capabilities* caps = nullptr;
    std::string device_id;  // a copy: `caps` may be overwritten before CapabilitiesChanged
    uint64_t label = 0;     // orders workers as their device ids; 0 until labelled
    WorkerState state;      // slots as of the last CapabilitiesChanged
    TypeId last_type = 0;
    GroupId group = kNoGroup;
  };

  TypeId Intern(absl::string_view type);
  // The tier's best member for tasks of `type`, as ChooseWorker ranks them.
  static Candidate BestFor(const Tier& g, TypeId type) {
    // At the lowest load a member that last ran `type` wins (PlacementKey: warm before
    // cold); otherwise the best member, cold unless it last ran `type`.
    if (type < g.best_warm.size()) {
      const Member& warm = g.best_warm[type];
      if (warm.worker != kNoWorker && warm.key.load == g.best.key.load) return {warm.key, warm.label, warm.worker};
    }
    PlacementKey key = g.best.key;
    key.cold = g.best.last_type != type;
    return {key, g.best.label, g.best.worker};
  }
  // PlacementKey's order, then the label; spelled out because this is the hot loop.
  static bool Better(const Candidate& a, const Candidate& b) {
    if (a.key.load != b.key.load) return a.key.load < b.key.load;
    if (a.key.cold != b.key.cold) return b.key.cold;
    if (a.key.free_neg != b.key.free_neg) return a.key.free_neg < b.key.free_neg;
    return a.label < b.label;
  }
  Member MemberOf(Handle h) const;
  // Re-reads `best` and best_warm[type] of a tier from its sets.
  static void Recache(Tier& t, TypeId type);
  static Tier& TierOf(Group& g, int32_t tier) { return tier == 0 ? g.own : g.lent[tier - 1]; }
  static size_t TierCount(const Group& g) { return 1 + g.lent.size(); }
  // Whether a group whose lowest tier is `lowest` has a member for the class.
  static bool Serves(int32_t lowest, const Class& c) { return lowest <= c.spec.depth; }
  // Moves the group's lowest tier to `lowest`, counting its classes' free groups.
  void SetLowest(GroupId g, int32_t lowest);
  GroupId FindOrAddGroup(const std::string& signature);
  // Takes the worker out of its group / puts it in `g` (members, accepting counts).
  void Detach(Handle h);
  void Attach(Handle h, GroupId g);
  // Adds or removes the worker in its group's members, if it can take a task now.
  void List(Handle h);
  void Unlist(Handle h);
  // Counts `delta` accepting workers more in group `g` and its classes.
  void CountAccepting(GroupId g, int delta);
  // Gives `h`, just (re)inserted in by_device_, a label between its neighbours'.
  void Label(Handle h);

  std::vector<Worker> workers_;
  std::vector<Group> groups_;
  absl::flat_hash_map<std::string, GroupId> group_by_signature_;
  std::vector<std::unique_ptr<Class>> classes_;  // by class id; null when not indexed
  std::vector<ClassId> indexed_;                 // in order of AddClass (signature positions)
  absl::flat_hash_map<std::string, TypeId> types_ = {{"", 0}};
  // Every worker by (device id, handle): the order labels follow. A new id takes the
  // middle of the gap between its neighbours' labels; when there is none, every label is
  // spread out again and every group re-sorted.
  absl::btree_set<std::pair<std::string, Handle>> by_device_;
  int free_workers_ = 0;
  const int32_t max_task_depth_;
};

}  // namespace rc::coordinator
