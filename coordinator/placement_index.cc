#include "coordinator/placement_index.h"

#include <algorithm>
#include <bit>

namespace rc::coordinator {

PlacementIndex::Node PlacementIndex::NodeFor(const Worker& w, const ClassSpec& spec, Handle h) const {
  if (!w.accepting || w.running >= w.slots) return Node();
  return Node{KeyFor(WorkerView{w.caps, w.running, true, w.last_task_type}, spec.task_type), w.label, h};
}

void PlacementIndex::Label(Handle h) {
  auto it = by_device_.find({workers_[h].device_id, h});
  const uint64_t lo = it == by_device_.begin() ? 0 : workers_[std::prev(it)->second].label;
  const uint64_t hi = std::next(it) == by_device_.end() ? UINT64_MAX : workers_[std::next(it)->second].label;
  if (hi - lo >= 2) {
    workers_[h].label = lo + (hi - lo) / 2;
    return;
  }
  const uint64_t step = UINT64_MAX / (by_device_.size() + 1);
  uint64_t label = 0;
  for (const auto& [id, other] : by_device_) workers_[other].label = label += step;
  for (auto& t : trees_) {
    if (t == nullptr) continue;
    for (size_t leaf = 0; leaf < t->leaf_worker.size(); ++leaf) {
      Node& n = t->nodes[t->capacity + leaf];
      if (n.worker != kNoWorker) n.label = workers_[n.worker].label;
    }
    BuildInner(*t);
  }
}

void PlacementIndex::SetLeaf(Tree& t, uint32_t leaf, const Node& node) {
  size_t i = t.capacity + leaf;
  if (t.nodes[i] == node) return;
  t.nodes[i] = node;
  for (i /= 2; i >= 1; i /= 2) {
    const Node& l = t.nodes[2 * i];
    const Node& r = t.nodes[2 * i + 1];
    const Node& best = Better(r, l) ? r : l;
    if (t.nodes[i] == best) return;  // the winner above does not change
    t.nodes[i] = best;
  }
}

void PlacementIndex::BuildInner(Tree& t) {
  for (size_t i = t.capacity - 1; i >= 1; --i) {
    t.nodes[i] = Better(t.nodes[2 * i + 1], t.nodes[2 * i]) ? t.nodes[2 * i + 1] : t.nodes[2 * i];
  }
}

void PlacementIndex::Grow(Tree& t) {
  std::vector<Node> nodes(4 * t.capacity);
  std::copy(t.nodes.begin() + t.capacity, t.nodes.end(), nodes.begin() + 2 * t.capacity);
  t.nodes = std::move(nodes);
  t.capacity *= 2;
  BuildInner(t);
}

void PlacementIndex::AddLeaf(ClassId id, Handle h) {
  Tree& t = *trees_[id];
  uint32_t leaf;
  if (!t.free_leaves.empty()) {
    leaf = t.free_leaves.back();
    t.free_leaves.pop_back();
    t.leaf_worker[leaf] = h;
  } else {
    if (t.leaf_worker.size() == t.capacity) Grow(t);
    leaf = static_cast<uint32_t>(t.leaf_worker.size());
    t.leaf_worker.push_back(h);
  }
  Worker& w = workers_[h];
  w.leaves.emplace_back(id, leaf);
  if (w.accepting) ++t.accepting;
  SetLeaf(t, leaf, NodeFor(w, t.spec, h));
}

PlacementIndex::Handle PlacementIndex::Add(const pb::Capabilities* caps) {
  const Handle h = static_cast<Handle>(workers_.size());
  workers_.emplace_back().caps = caps;
  CapabilitiesChanged(h);
  return h;
}

void PlacementIndex::CapabilitiesChanged(Handle h) {
  Worker& w = workers_[h];
  for (auto [id, leaf] : w.leaves) {
    Tree& t = *trees_[id];
    if (w.accepting) --t.accepting;
    SetLeaf(t, leaf, Node());
    t.leaf_worker[leaf] = kNoWorker;
    t.free_leaves.push_back(leaf);
  }
  w.leaves.clear();
  const bool was_free = w.accepting && w.running < w.slots;
  if (w.label == 0 || w.device_id != w.caps->device_id()) {
    by_device_.erase({w.device_id, h});
    w.device_id = w.caps->device_id();
    by_device_.emplace(w.device_id, h);
    Label(h);
  }
  w.slots = w.caps->slots();
  free_workers_ += (w.accepting && w.running < w.slots) - was_free;
  for (ClassId id = 0; id < trees_.size(); ++id) {
    if (trees_[id] != nullptr && CanRun(*w.caps, trees_[id]->spec)) AddLeaf(id, h);
  }
}

void PlacementIndex::Update(Handle h, int running, bool accepting, absl::string_view last_task_type) {
  Worker& w = workers_[h];
  if (w.running == running && w.accepting == accepting && w.last_task_type == last_task_type) return;
  free_workers_ += (accepting && running < w.slots) - (w.accepting && w.running < w.slots);
  if (accepting != w.accepting) {
    for (auto [id, leaf] : w.leaves) trees_[id]->accepting += accepting ? 1 : -1;
  }
  w.running = running;
  w.accepting = accepting;
  w.last_task_type = std::string(last_task_type);
  for (auto [id, leaf] : w.leaves) SetLeaf(*trees_[id], leaf, NodeFor(w, trees_[id]->spec, h));
}

void PlacementIndex::AddClass(ClassId id, const ClassSpec& spec) {
  if (trees_.size() <= id) trees_.resize(id + 1);
  trees_[id] = std::make_unique<Tree>();
  Tree& t = *trees_[id];
  t.spec = spec;
  for (Handle h = 0; h < workers_.size(); ++h) {
    Worker& w = workers_[h];
    if (!CanRun(*w.caps, spec)) continue;
    w.leaves.emplace_back(id, static_cast<uint32_t>(t.leaf_worker.size()));
    t.leaf_worker.push_back(h);
    if (w.accepting) ++t.accepting;
  }
  // Fill the leaves first, then build every inner node once.
  t.capacity = std::bit_ceil(std::max<size_t>(t.leaf_worker.size(), 1));
  t.nodes.assign(2 * t.capacity, Node());
  for (size_t leaf = 0; leaf < t.leaf_worker.size(); ++leaf) {
    const Handle h = t.leaf_worker[leaf];
    t.nodes[t.capacity + leaf] = NodeFor(workers_[h], spec, h);
  }
  BuildInner(t);
}

std::optional<PlacementIndex::Handle> PlacementIndex::Choose(ClassId id) const {
  const Node& root = trees_[id]->nodes[1];
  if (root.worker == kNoWorker) return std::nullopt;
  return root.worker;
}

}  // namespace rc::coordinator
