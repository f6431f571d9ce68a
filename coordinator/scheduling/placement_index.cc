#include "coordinator/scheduling/placement_index.h"

#include <algorithm>
#include <limits>

namespace rc::coordinator {
namespace {

// Past the first or last device id, labels step by this much, so that ids arriving in
// order (w0001, w0002, ...) leave room for millions more before a relabelling.
constexpr uint64_t kLabelStep = uint64_t{1} << 40;

// Below every member's load: where the members of one type start in a warm set.
constexpr double kLowest = -std::numeric_limits<double>::infinity();

}  // namespace

PlacementIndex::TypeId PlacementIndex::Intern(absl::string_view type) {
  auto it = types_.find(type);
  if (it != types_.end()) return it->second;
  const TypeId id = static_cast<TypeId>(types_.size());
  types_.emplace(std::string(type), id);
  return id;
}

PlacementIndex::Member PlacementIndex::MemberOf(Handle h) const {
  const Worker& w = workers_[h];
  return Member{KeyFor(w.state.running - w.state.waiting, w.state.slots, /*warm=*/true), w.label, h, w.last_type};
}

void PlacementIndex::Recache(Tier& t, TypeId type) {
  t.best = t.free.empty() ? Member() : *t.free.begin();
  if (t.best_warm.size() <= type) t.best_warm.resize(type + 1);
  auto it = t.warm.lower_bound({type, Member{PlacementKey{kLowest}}});
  t.best_warm[type] = it != t.warm.end() && it->first == type ? it->second : Member();
}

void PlacementIndex::SetLowest(GroupId id, int32_t lowest) {
  Group& g = groups_[id];
  if (g.lowest == lowest) return;
  for (ClassId cls : g.classes) {
    Class& c = *classes_[cls];
    c.free_groups += static_cast<int>(Serves(lowest, c)) - static_cast<int>(Serves(g.lowest, c));
  }
  g.lowest = lowest;
}

void PlacementIndex::List(Handle h) {
  const Worker& w = workers_[h];
  const int32_t tier = LowestReadyDepth(w.state);
  if (tier < 0) return;
  Group& g = groups_[w.group];
  if (TierCount(g) <= static_cast<size_t>(tier)) g.lent.resize(tier);
  Tier& t = TierOf(g, tier);
  t.free.insert(MemberOf(h));
  t.warm.insert({w.last_type, MemberOf(h)});
  Recache(t, w.last_type);
  if (tier < g.lowest) SetLowest(w.group, tier);
  ++free_workers_;
}

void PlacementIndex::Unlist(Handle h) {
  const Worker& w = workers_[h];
  const int32_t tier = LowestReadyDepth(w.state);
  if (tier < 0) return;
  Group& g = groups_[w.group];
  Tier& t = TierOf(g, tier);
  t.free.erase(MemberOf(h));
  t.warm.erase({w.last_type, MemberOf(h)});
  Recache(t, w.last_type);
  if (tier == g.lowest && t.free.empty()) {
    int32_t lowest = tier + 1;
    while (static_cast<size_t>(lowest) < TierCount(g) && TierOf(g, lowest).free.empty()) ++lowest;
    SetLowest(w.group, static_cast<size_t>(lowest) < TierCount(g) ? lowest : kNoTier);
  }
  --free_workers_;
}

void PlacementIndex::CountAccepting(GroupId id, int delta) {
  Group& g = groups_[id];
  g.accepting += delta;
  for (ClassId cls : g.classes) classes_[cls]->accepting += delta;
}

void PlacementIndex::Detach(Handle h) {
  Worker& w = workers_[h];
  if (w.group == kNoGroup) return;
  Unlist(h);
  if (Accepting(w.state)) CountAccepting(w.group, -1);
  w.group = kNoGroup;
}

void PlacementIndex::Attach(Handle h, GroupId g) {
  Worker& w = workers_[h];
  w.group = g;
  List(h);
  if (Accepting(w.state)) CountAccepting(g, 1);
}

PlacementIndex::GroupId PlacementIndex::FindOrAddGroup(const std::string& signature) {
  auto it = group_by_signature_.find(signature);
  if (it != group_by_signature_.end()) return it->second;
  const GroupId g = static_cast<GroupId>(groups_.size());
  Group& group = groups_.emplace_back();
  group.signature = signature;
  for (size_t i = 0; i < indexed_.size(); ++i) {
    if (signature[i] != '1') continue;
    group.classes.push_back(indexed_[i]);
    classes_[indexed_[i]]->groups.push_back(g);
  }
  group_by_signature_.emplace(signature, g);
  return g;
}

void PlacementIndex::Label(Handle h) {
  auto it = by_device_.find({workers_[h].device_id, h});
  const bool first = it == by_device_.begin();
  const bool last = std::next(it) == by_device_.end();
  const uint64_t lo = first ? 0 : workers_[std::prev(it)->second].label;
  const uint64_t hi = last ? UINT64_MAX : workers_[std::next(it)->second].label;
  const uint64_t step = first == last ? (hi - lo) / 2 : std::min((hi - lo) / 2, kLabelStep);
  if (step > 0) {
    workers_[h].label = last ? lo + step : hi - step;
    return;
  }
  // No room left between the neighbours: spread every label out again and re-sort.
  const uint64_t spread = UINT64_MAX / (by_device_.size() + 1);
  uint64_t label = 0;
  for (const auto& [id, other] : by_device_) workers_[other].label = label += spread;
  // (Which tier each member is in does not change: only the order within tiers.)
  for (Group& g : groups_) {
    for (size_t tier = 0; tier < TierCount(g); ++tier) {
      TierOf(g, tier).free.clear();
      TierOf(g, tier).warm.clear();
    }
  }
  for (Handle other = 0; other < workers_.size(); ++other) {
    const Worker& w = workers_[other];
    const int32_t tier = w.group == kNoGroup ? -1 : LowestReadyDepth(w.state);
    if (tier < 0) continue;
    TierOf(groups_[w.group], tier).free.insert(MemberOf(other));
    TierOf(groups_[w.group], tier).warm.insert({w.last_type, MemberOf(other)});
  }
  for (Group& g : groups_) {
    for (size_t tier = 0; tier < TierCount(g); ++tier) {
      Tier& t = TierOf(g, tier);
      for (TypeId type = 0; type < std::max<size_t>(t.best_warm.size(), 1); ++type) Recache(t, type);
    }
  }
}

PlacementIndex::Handle PlacementIndex::Add(const pb::Capabilities* caps) {
  const Handle h = static_cast<Handle>(workers_.size());
  Worker& w = workers_.emplace_back();
  w.caps = caps;
  w.state.max_task_depth = max_task_depth_;
  CapabilitiesChanged(h);
  return h;
}

void PlacementIndex::CapabilitiesChanged(Handle h) {
  Worker& w = workers_[h];
  Detach(h);
  if (w.label == 0 || w.device_id != w.caps->device_id()) {
    by_device_.erase({w.device_id, h});
    w.device_id = w.caps->device_id();
    by_device_.emplace(w.device_id, h);
    Label(h);
  }
  w.state.slots = w.caps->slots();
  std::string signature;
  for (ClassId id : indexed_) signature.push_back(CanRun(*w.caps, classes_[id]->spec) ? '1' : '0');
  Attach(h, FindOrAddGroup(signature));
}

void PlacementIndex::Update(Handle h, int running, bool accepting, absl::string_view last_task_type, int waiting,
                            int32_t deepest_waiting) {
  Worker& w = workers_[h];
  const TypeId type = Intern(last_task_type);
  if (w.state.running == running && w.state.accepting == accepting && w.last_type == type &&
      w.state.waiting == waiting && w.state.deepest_waiting == deepest_waiting) {
    return;
  }
  Unlist(h);
  const bool was_accepting = Accepting(w.state);
  w.state.running = running;
  w.state.accepting = accepting;
  w.state.waiting = waiting;
  w.state.deepest_waiting = deepest_waiting;
  w.last_type = type;
  if (Accepting(w.state) != was_accepting) CountAccepting(w.group, was_accepting ? -1 : 1);
  List(h);
}

void PlacementIndex::AddClass(ClassId id, const ClassSpec& spec) {
  // Which members of each group can run the new class.
  std::vector<std::vector<Handle>> can(groups_.size());
  std::vector<size_t> members(groups_.size());
  for (Handle h = 0; h < workers_.size(); ++h) {
    const GroupId g = workers_[h].group;
    ++members[g];
    if (CanRun(*workers_[h].caps, spec)) can[g].push_back(h);
  }
  if (classes_.size() <= id) classes_.resize(id + 1);
  classes_[id] = std::make_unique<Class>();
  Class& c = *classes_[id];
  c.spec = spec;
  c.type = Intern(spec.task_type);
  indexed_.push_back(id);
  // The class takes the last place of every signature. A group whose members all can run
  // it joins it; one where only some can splits, those moving to a group of their own.
  const GroupId groups = static_cast<GroupId>(groups_.size());
  group_by_signature_.clear();
  for (GroupId g = 0; g < groups; ++g) {
    const bool all = members[g] > 0 && can[g].size() == members[g];
    groups_[g].signature.push_back(all ? '1' : '0');
    group_by_signature_.emplace(groups_[g].signature, g);
    if (!all) continue;
    groups_[g].classes.push_back(id);
    c.groups.push_back(g);
    c.accepting += groups_[g].accepting;
    c.free_groups += Serves(groups_[g].lowest, c);
  }
  for (GroupId g = 0; g < groups; ++g) {
    if (groups_[g].signature.back() == '1' || can[g].empty()) continue;
    std::string signature = groups_[g].signature;
    signature.back() = '1';
    const GroupId split = FindOrAddGroup(signature);
    for (Handle h : can[g]) {
      Detach(h);
      Attach(h, split);
    }
  }
}

std::optional<PlacementIndex::Handle> PlacementIndex::Choose(ClassId id) const {
  const Class& c = *classes_[id];
  if (c.free_groups == 0) return std::nullopt;
  Candidate best;
  auto consider = [&](const Tier& t) {
    if (t.best.worker == kNoWorker) return;
    Candidate candidate = BestFor(t, c.type);
    if (best.worker == kNoWorker || Better(candidate, best)) best = candidate;
  };
  const int32_t depth = c.spec.depth;
  for (GroupId g : c.groups) {
    const Group& group = groups_[g];
    if (!Serves(group.lowest, c)) continue;
    consider(group.own);
    // Tiers above the class's depth hold workers whose lent slots it may not use.
    const size_t lent = std::min<size_t>(depth, group.lent.size());
    for (size_t i = 0; i < lent; ++i) consider(group.lent[i]);
  }
  if (best.worker == kNoWorker) return std::nullopt;
  return best.worker;
}

}  // namespace rc::coordinator
