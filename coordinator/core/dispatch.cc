#include "coordinator/core/dispatch.h"

#include <algorithm>
#include <queue>

#include "absl/strings/str_cat.h"
#include "common/task_defaults.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"
#include "coordinator/core/task_tokens.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

namespace {

// "" when some accepting worker can run the class; else why none can (the full scan
// that names workers runs only then).
std::string Reason(WorkerRegistry& workers, ClassId cls, const ClassSpec& spec) {
  return workers.Runnable(cls, spec) ? "" : UnschedulableReason(workers.Views(), spec);
}

}  // namespace

void TaskDispatch::RefreshReasonLocked(ClassId cls) {
  class_reasons_[cls] = Reason(workers_, cls, queue_.spec(cls));
}

void TaskDispatch::RefreshReasonsLocked() {
  class_reasons_.clear();
  for (ClassId cls : queue_.non_empty()) class_reasons_[cls] = Reason(workers_, cls, queue_.spec(cls));
}

void TaskDispatch::DispatchLocked(Effects& fx) {
  if (queue_.size() == 0 || !workers_.AnyFree()) return;
  // Best head first: a max-heap on "is better than".
  using Item = std::pair<QueueKey, ClassId>;
  auto worse = [](const Item& a, const Item& b) { return b.first < a.first; };
  std::priority_queue<Item, std::vector<Item>, decltype(worse)> heads(worse);
  for (ClassId cls : queue_.non_empty()) heads.emplace(queue_.Head(cls)->first, cls);

  while (!heads.empty() && workers_.AnyFree()) {
    ClassId cls = heads.top().second;
    heads.pop();
    WorkerEntry* w = workers_.Choose(cls, queue_.spec(cls));
    if (w == nullptr) continue;  // nobody free can run this class now; others may still go
    auto head = queue_.Head(cls);
    queue_.Remove(cls, head->first);
    AssignLocked(tasks_.Find(head->second), w, fx);
    if (auto next = queue_.Head(cls)) heads.emplace(next->first, cls);
  }
}

void TaskDispatch::AssignLocked(TaskEntry* e, WorkerEntry* w, Effects& fx) {
  pb::Task& t = e->task;
  const int64_t now = clock_->NowMs();
  if (absl::Status s = lifecycle_.Assign(e, w->caps.device_id(), now); !s.ok()) {
    // Cannot happen: only queued heads (not waiting out a backoff) are dispatched.
    spdlog::error("dispatch: {}", s.ToString());
    return;
  }
  const size_t send = fx.IndexFor(w->link);
  *fx.sends[send].second.add_assignments() = AttemptLocked(e, w);
  if (NeedsPayload(*e)) fx.payloads_to_load[send].push_back(t.task_id());  // read off the lock
  // The assignment's record is written kAssignmentWriteDelayMs later (from Tick), and only
  // if the attempt still runs then: most short tasks end first, and their final record
  // carries the assignment with it, saving one store write per task (issue 18). A
  // coordinator that crashes before either write recovers the task as queued, and adopts
  // the attempt when its worker reports it (WorkerSessions::ReconcileLocked), as it did
  // for an assignment whose commit had not completed. Token checks after such a crash
  // fail until then (the token's digest was in the unwritten record), so a task about to
  // act with its token has the record written first (WriteAssignmentNowLocked).
  // When the store has nothing in flight (a quiet cluster, where latency is what counts),
  // it is written at once instead: its commit then overlaps the task's run, and the
  // outcome may reach waiters before its own commit (HeldSnapshot, core_state.h). An
  // outcome whose assignment is not written waits for its own commit.
  if (StoreIdleLocked()) {
    ChangedLocked(e, fx);
    return;
  }
  ChangedLocked(e, fx, /*write=*/false);
  e->assignment_unwritten = true;
  e->attempt_op = TaskEntry::kAttemptNotWritten;
  unwritten_assignments_.emplace_back(now, t.task_id(), t.attempts());
}

bool TaskDispatch::NothingInLineCouldGoLocked() {
  if (queue_.size() == 0) return true;
  if (queue_.non_empty().size() > kMaxClassesChecked) return false;
  // Dispatch runs whenever a slot frees or a task joins the line, so a class in line with
  // a free worker able to run it should not exist; if one does, the new task takes the
  // usual way, behind it.
  for (ClassId cls : queue_.non_empty()) {
    if (workers_.Choose(cls, queue_.spec(cls)) != nullptr) return false;
  }
  return true;
}

bool TaskDispatch::PlaceLocked(TaskEntry* e, Effects& fx) {
  // A placed task never takes a slot a task in line could have had.
  if (!workers_.AnyFree() || !NothingInLineCouldGoLocked()) return false;
  WorkerEntry* w = workers_.Choose(e->cls, queue_.spec(e->cls));
  if (w == nullptr || !lifecycle_.Place(e, w->caps.device_id(), clock_->NowMs()).ok()) return false;
  // Written with the submit, in this operation: its outcome reaches waiters once that
  // write is durable (HeldSnapshot).
  e->attempt_written = e->task.attempts();
  e->attempt_op = operation_;
  if (e->task.spec().idempotency_key().empty() && w->link != nullptr) {
    *fx.MessageFor(w->link).add_assignments() = AttemptLocked(e, w);
    e->sent_unstored = true;
  } else {
    e->placed = std::make_unique<pb::Assignment>(AttemptLocked(e, w));
  }
  return true;
}

void TaskDispatch::RecallUnstoredLocked(TaskEntry* e, Effects& fx) {
  pb::Task& t = e->task;
  if (t.status() == pb::TASK_STATUS_QUEUED) queue_.Remove(e->cls, e->key);  // its worker left meanwhile
  if (t.status() != pb::TASK_STATUS_ASSIGNED && t.status() != pb::TASK_STATUS_RUNNING) return;
  WorkerEntry* w = workers_.Find(t.worker_device_id());
  if (w == nullptr || w->link == nullptr) return;
  pb::CancelAttempt* c = fx.MessageFor(w->link).add_cancels();
  c->set_task_id(t.task_id());
  c->set_attempt(t.attempts());
}

void TaskDispatch::SendPlacedLocked(TaskEntry* e, bool stored, Effects& fx) {
  std::unique_ptr<pb::Assignment> a = std::move(e->placed);
  if (a == nullptr) return;
  const std::string& device = e->task.worker_device_id();
  if (!IsCurrentAttempt(e->task, device, a->attempt())) return;  // ended before its commit (a cancel freed the slot)
  WorkerEntry* w = workers_.Find(device);
  if (!stored || w == nullptr || w->link == nullptr) {
    if (w != nullptr) w->Forget({e->task.task_id(), a->attempt()});
    if (!stored) return;  // the caller forgets the task: nothing unacknowledged runs
    // Its worker left before the commit: back in line, not counted as a failure.
    if (lifecycle_.HandBack(e, absl::StrCat("handed back: worker ", device, " left before the task reached it"),
                            clock_->NowMs())
            .ok()) {
      EnqueueLocked(e);
      ChangedLocked(e, fx);
    }
    return;
  }
  *fx.MessageFor(w->link).add_assignments() = std::move(*a);
}

pb::Assignment TaskDispatch::AttemptLocked(TaskEntry* e, WorkerEntry* w) {
  pb::Task& t = e->task;
  w->running.emplace(t.task_id(), t.attempts());
  if (t.attempt_history_size() == 1) dispatch_latency_.Observe((clock_->NowMs() - t.created_at_ms()) / 1000.0);
  w->last_task_type = t.spec().task_type();
  ++tasks_scheduled_;

  pb::Assignment assignment;
  pb::Assignment* as = &assignment;
  as->set_task_id(t.task_id());
  as->set_attempt(t.attempts());
  as->set_task_type(t.spec().task_type());
  as->set_payload(t.spec().payload());  // empty when only the store has it (AssignLocked)
  const pb::Requirements& r = t.spec().requirements();
  as->set_timeout_seconds(TimeoutSeconds(r));
  as->set_internet_required(r.internet_required());
  as->set_owner(e->task.owner());
  // The attempt's task token: the record keeps only its digest (written with this
  // assignment, so it outlives a coordinator restart); the text goes to the worker alone.
  if (absl::StatusOr<MintedToken> token = MintTaskToken(t.task_id(), t.attempts()); token.ok()) {
    t.set_attempt_token_sha256(std::move(token->sha256));
    as->set_task_token(std::move(token->text));
  } else {
    t.clear_attempt_token_sha256();  // this attempt runs, but cannot call the cluster
    spdlog::error("dispatch of {}: {}", t.task_id(), token.status().ToString());
  }
  as->set_parent_task_id(t.parent_task_id());
  as->set_root_task_id(t.root_task_id().empty() ? t.task_id() : t.root_task_id());
  as->set_depth(t.depth());
  as->mutable_metadata()->insert(t.spec().metadata().begin(), t.spec().metadata().end());
  return assignment;
}

void TaskDispatch::WriteLateAssignmentsLocked(int64_t now_ms, Effects& fx) {
  while (!unwritten_assignments_.empty() &&
         std::get<0>(unwritten_assignments_.front()) <= now_ms - kAssignmentWriteDelayMs) {
    auto [at, id, attempt] = std::move(unwritten_assignments_.front());
    unwritten_assignments_.pop_front();
    TaskEntry* e = tasks_.Find(id);
    if (e == nullptr || !e->assignment_unwritten || e->task.attempts() != attempt) continue;  // written or ended since
    WriteLocked(e, fx);
  }
}

void TaskDispatch::WriteAssignmentNowLocked(TaskEntry* e, Effects& fx) {
  if (e != nullptr && e->assignment_unwritten) WriteLocked(e, fx);
}

void TaskDispatch::EnqueueLocked(TaskEntry* e) {
  queue_.Push(e->cls, e->key, e->task.task_id());  // its original place in line
  if (!class_reasons_.contains(e->cls)) RefreshReasonLocked(e->cls);
}

void TaskDispatch::RetryOrFailLocked(TaskEntry* e, const std::string& why, Effects& fx) {
  absl::StatusOr<pb::TaskStatus> to = lifecycle_.RetryOrFail(e, why, clock_->NowMs());
  if (!to.ok()) {
    spdlog::error("retry: {}", to.status().ToString());  // callers only end current attempts
    return;
  }
  if (*to == pb::TASK_STATUS_QUEUED) retry_at_.emplace(e->task.next_attempt_at_ms(), e->task.task_id());
  ChangedLocked(e, fx);
}

void TaskDispatch::ReleaseRetriesLocked(int64_t now_ms, Effects& fx) {
  bool released = false;
  while (!retry_at_.empty() && retry_at_.begin()->first <= now_ms) {
    auto [at, id] = *retry_at_.begin();
    retry_at_.erase(retry_at_.begin());
    TaskEntry* e = tasks_.Find(id);
    // Skip entries made stale by a cancel (or a newer schedule).
    if (e == nullptr || e->task.status() != pb::TASK_STATUS_QUEUED || e->task.next_attempt_at_ms() != at) continue;
    if (!lifecycle_.Release(e).ok()) continue;
    EnqueueLocked(e);
    ChangedLocked(e, fx);
    released = true;
  }
  if (released) DispatchLocked(fx);
}

}  // namespace rc::coordinator
