#include "coordinator/core/workflows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

// Cascades act in submission order, so that their writes and snapshots are too.
void InSubmissionOrder(std::vector<TaskEntry*>& entries) {
  std::sort(entries.begin(), entries.end(), [](const TaskEntry* a, const TaskEntry* b) { return a->key.seq < b->key.seq; });
}

}  // namespace

Workflows::DependencyState Workflows::DependencyLocked(const pb::Dependency& d, const StoredRecords& stored) {
  DependencyState st;
  const pb::Task* ended = nullptr;
  if (TaskEntry* e = tasks_.Find(d.task_id())) {
    st.record = &e->task;
    if (!IsTerminal(e->task.status())) {
      st.kind = DependencyState::kUnended;
      st.entry = e;
      return st;
    }
    ended = &e->task;
  } else {
    auto it = stored.find(d.task_id());
    if (it == stored.end()) {
      st.kind = DependencyState::kLookup;
      return st;
    }
    if (!it->second.ok()) {
      st.kind = DependencyState::kError;
      st.why = absl::StrCat("task store: ", it->second.status().message());
      return st;
    }
    // Only finished tasks leave memory: an unfinished record is one never accepted.
    if (!it->second->has_value() || !IsTerminal((*it->second)->status())) return st;  // kUnknown
    ended = &**it->second;
  }
  DependencyState out = Ended(d, ended->status());
  out.record = ended;
  return out;
}

Workflows::DependencyState Workflows::Ended(const pb::Dependency& d, pb::TaskStatus how) {
  DependencyState st;
  if (ConditionHolds(d.condition(), how)) {
    st.kind = DependencyState::kMet;
  } else {
    st.kind = DependencyState::kNever;
    st.why = NeverMetMessage(d.task_id(), how, d.condition());
  }
  return st;
}

absl::Status Workflows::StopLocked(TaskEntry* e, const std::string& why, Effects& fx) {
  const pb::TaskStatus from = e->task.status();
  const std::string device = e->task.worker_device_id();
  const int32_t attempt = e->task.attempts();
  if (absl::Status s = lifecycle_.Cancel(e, why, clock_->NowMs()); !s.ok()) return s;
  if (from == pb::TASK_STATUS_QUEUED) queue_.Remove(e->cls, e->key);  // no-op while it waits out a retry backoff
  if (e->placed != nullptr) {
    // Placed with its submit, not sent yet: its worker never hears of it.
    e->placed.reset();
    if (WorkerEntry* w = workers_.Find(device)) w->Forget({e->task.task_id(), attempt});
  } else if (from == pb::TASK_STATUS_ASSIGNED || from == pb::TASK_STATUS_RUNNING) {
    // Its slot stays reserved until the worker confirms the attempt ended.
    WorkerEntry* w = workers_.Find(device);
    if (w != nullptr && w->link != nullptr) {
      pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
      c->set_task_id(e->task.task_id());
      c->set_attempt(attempt);
    }
  }
  ChangedLocked(e, fx);
  return absl::OkStatus();
}

void Workflows::DispatchLocked(Effects& fx) {
  PropagateEndsLocked(fx);
  TaskDispatch::DispatchLocked(fx);
}

void Workflows::PropagateEndsLocked(Effects& fx) {
  bool queued = false;
  while (lifecycle_.any_ended()) {
    for (const std::string& id : lifecycle_.TakeEnded()) {
      TaskEntry* e = tasks_.Find(id);
      if (e == nullptr) continue;  // forgotten since (its record was not stored)
      graph_.Unlink(e);
      const pb::TaskStatus how = e->task.status();
      std::vector<TaskEntry*> children = graph_.TakeChildren(id);
      InSubmissionOrder(children);
      for (TaskEntry* child : children) {
        if (IsTerminal(child->task.status()) || !EndsWithParent(child->task, how)) continue;
        if (absl::Status s = StopLocked(child, ParentEndedMessage(id, how), fx); !s.ok()) spdlog::error("{}", s.ToString());
      }
      std::vector<TaskEntry*> waiting = graph_.TakeDependents(id);
      InSubmissionOrder(waiting);
      for (TaskEntry* w : waiting) queued = ResolveLocked(w, id, how, fx) || queued;
    }
  }
  if (queued) TaskDispatch::DispatchLocked(fx);
}

bool Workflows::ResolveLocked(TaskEntry* waiting, const std::string& dep, pb::TaskStatus how, Effects& fx) {
  if (waiting->task.status() != pb::TASK_STATUS_PENDING) return false;  // cancelled meanwhile
  for (const pb::Dependency& d : waiting->task.spec().after()) {
    if (d.task_id() != dep || ConditionHolds(d.condition(), how)) continue;
    if (absl::Status s = StopLocked(waiting, NeverMetMessage(dep, how, d.condition()), fx); !s.ok()) {
      spdlog::error("{}", s.ToString());
    }
    return false;
  }
  absl::StatusOr<pb::TaskStatus> to = lifecycle_.Resolve(waiting, dep);
  if (!to.ok()) {
    spdlog::error("{}", to.status().ToString());  // linked as a dependent only while waiting for it
    return false;
  }
  if (*to == pb::TASK_STATUS_QUEUED) EnqueueLocked(waiting);
  ChangedLocked(waiting, fx);
  return *to == pb::TASK_STATUS_QUEUED;
}

absl::Status Workflows::ChildLimitsLocked(const TaskEntry& parent) {
  const pb::Task& p = parent.task;
  if (p.depth() + 1 > options_.max_task_depth) {
    return absl::ResourceExhaustedError(absl::StrCat("parent task ", p.task_id(), " is at depth ", p.depth(),
                                                     ": a child would be at depth ", p.depth() + 1,
                                                     ", past the limit of ", options_.max_task_depth,
                                                     " (max_task_depth)"));
  }
  const size_t children = graph_.Children(p.task_id());
  if (options_.max_children_per_task > 0 && children >= static_cast<size_t>(options_.max_children_per_task)) {
    return absl::ResourceExhaustedError(absl::StrCat("parent task ", p.task_id(), " has ", children,
                                                     " unfinished children, the limit (max_children_per_task)"));
  }
  return absl::OkStatus();
}

void Workflows::PlaceInTree(const pb::Task* parent, pb::Task* t) {
  if (parent == nullptr) {
    t->set_root_task_id(t->task_id());
    return;
  }
  t->set_parent_task_id(parent->task_id());
  // A parent stored before tasks had roots is the root of its own tree.
  t->set_root_task_id(parent->root_task_id().empty() ? parent->task_id() : parent->root_task_id());
  t->set_depth(parent->depth() + 1);
  *t->mutable_ancestor_task_ids() = parent->ancestor_task_ids();
  t->add_ancestor_task_ids(parent->task_id());
  t->set_owner(parent->owner());
}

void Workflows::LinkLocked(TaskEntry* e, const std::vector<TaskEntry*>& unended) {
  const std::string& parent = e->task.parent_task_id();
  if (!parent.empty()) {
    TaskEntry* p = tasks_.Find(parent);
    if (p != nullptr && !IsTerminal(p->task.status())) graph_.AddChild(parent, e);
  }
  for (TaskEntry* dep : unended) graph_.AddDependent(dep->task.task_id(), e);
}

void Workflows::UnstoredLocked(TaskEntry* e, Effects& fx) {
  graph_.Unlink(e);
  const std::string& id = e->task.task_id();
  // Only a task sent to its worker before its commit may have children (it ran meanwhile).
  std::vector<TaskEntry*> children = graph_.TakeChildren(id);
  InSubmissionOrder(children);
  for (TaskEntry* child : children) {
    if (IsTerminal(child->task.status())) continue;
    (void)StopLocked(child, absl::StrCat("parent task ", id, " was not stored"), fx);  // unfinished: allowed
  }
  std::vector<TaskEntry*> waiting = graph_.TakeDependents(id);
  InSubmissionOrder(waiting);
  for (TaskEntry* w : waiting) {
    if (IsTerminal(w->task.status())) continue;
    (void)StopLocked(w, absl::StrCat("dependency ", id, " was not stored"), fx);  // unfinished: allowed
  }
}

}  // namespace rc::coordinator
