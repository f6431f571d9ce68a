#pragma once
// Gives ChooseWorker's answer (scheduling_policy.h) for a scheduling class without
// scanning every worker: at 10k workers a scan costs ~300 us a decision.
//
// Per indexed class, a tournament tree (a complete binary tree in an array): its leaves
// are the workers that can run the class (CanRun, evaluated once per worker and class),
// each inner node holds the better of its children (PlacementKey, then device id), and a
// worker that cannot take a task now (not accepting, or no free slot) holds an empty
// leaf. The root is then the decision, and a change of one worker costs one walk from its
// leaf towards the root in each class it can run, stopping where the winner stays.
// Device ids are compared as integer labels in the same order, so that a node comparison
// reads no string and no worker record.
//
// Design assumptions: capabilities change rarely (on registration), a worker's running
// count on every placement and finish; classes are few next to workers. Memory is
// ~50 bytes per (class, worker that can run it). Not thread-safe.

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/strings/string_view.h"
#include "coordinator/scheduling_policy.h"

namespace rc::coordinator {

class PlacementIndex {
 public:
  using Handle = uint32_t;  // a worker, numbered from 0 in the order of Add

  // A worker whose capabilities are at `caps` (read again on CapabilitiesChanged; they
  // must outlive the index). It takes no task until Update says it accepts.
  Handle Add(const pb::Capabilities* caps);
  // Re-reads the worker's capabilities: which classes it can run, its slots.
  void CapabilitiesChanged(Handle h);
  // The worker's placement state, as in WorkerView.
  void Update(Handle h, int running, bool accepting, absl::string_view last_task_type);

  bool HasClass(ClassId id) const { return id < trees_.size() && trees_[id] != nullptr; }
  // Starts indexing a class: CanRun for every worker.
  void AddClass(ClassId id, const ClassSpec& spec);
  // ChooseWorker over every worker for an indexed class: the accepting worker with a free
  // slot that can run it and has the lowest PlacementKey, if any.
  std::optional<Handle> Choose(ClassId id) const;
  // Whether some accepting worker can run the indexed class, busy or not.
  bool Runnable(ClassId id) const { return trees_[id]->accepting > 0; }
  // Accepting workers with a free slot.
  int free_workers() const { return free_workers_; }

 private:
  static constexpr Handle kNoWorker = UINT32_MAX;

  // A leaf's or inner node's content: a worker that can take a task now, its key and
  // label; or no worker, which loses to every worker.
  struct Node {
    PlacementKey key{std::numeric_limits<double>::infinity()};
    uint64_t label = 0;
    Handle worker = kNoWorker;
    friend bool operator==(const Node&, const Node&) = default;
  };
  struct Tree {
    ClassSpec spec;
    size_t capacity = 0;              // leaves; a power of two
    std::vector<Node> nodes;          // 2 * capacity: root at 1, children of i at 2i and 2i+1
    std::vector<Handle> leaf_worker;  // per leaf in use: its worker (kNoWorker when freed)
    std::vector<uint32_t> free_leaves;
    int accepting = 0;  // accepting workers that can run the class
  };
  struct Worker {
    const pb::Capabilities* caps = nullptr;
    std::string device_id;  // a copy: `caps` may be overwritten before CapabilitiesChanged
    uint64_t label = 0;     // orders workers as their device ids
    int slots = 0;
    int running = 0;
    bool accepting = false;
    std::string last_task_type;
    std::vector<std::pair<ClassId, uint32_t>> leaves;  // (class, leaf) of every class it can run
  };

  static bool Better(const Node& a, const Node& b) {
    return std::tie(a.key, a.label) < std::tie(b.key, b.label);
  }
  Node NodeFor(const Worker& w, const ClassSpec& spec, Handle h) const;
  // Puts `node` at `leaf` and repairs the path to the root.
  void SetLeaf(Tree& t, uint32_t leaf, const Node& node);
  void AddLeaf(ClassId id, Handle h);
  // Recomputes every inner node from the leaves.
  void BuildInner(Tree& t);
  // Doubles the leaves of `t`.
  void Grow(Tree& t);
  // Gives `h` (whose device_id changed) a label between its neighbours' by device id.
  void Label(Handle h);

  // Every worker by (device id, handle): the order labels follow. A new id takes the
  // middle of the gap between its neighbours' labels; when there is none, every label
  // is spread out again and every tree rebuilt.
  absl::btree_set<std::pair<std::string, Handle>> by_device_;

  std::vector<Worker> workers_;
  std::vector<std::unique_ptr<Tree>> trees_;  // by class id; null when not indexed
  int free_workers_ = 0;
};

}  // namespace rc::coordinator
