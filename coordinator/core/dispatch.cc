// Coordinator: placement of queued tasks on workers (the mechanism around the policy).
#include <algorithm>
#include <queue>

#include "absl/strings/str_cat.h"
#include "common/task_defaults.h"
#include "common/task_names.h"
#include "coordinator/core/coordinator_internal.h"

namespace rc::coordinator {

namespace {

// "" when some accepting worker can run the class; else why none can (the full scan
// that names workers runs only then).
std::string Reason(WorkerRegistry& workers, ClassId cls, const ClassSpec& spec) {
  return workers.Runnable(cls, spec) ? "" : UnschedulableReason(workers.Views(), spec);
}

}  // namespace

void Coordinator::RefreshReasonLocked(ClassId cls) {
  class_reasons_[cls] = Reason(workers_, cls, queue_.spec(cls));
}

void Coordinator::RefreshReasonsLocked() {
  class_reasons_.clear();
  for (ClassId cls : queue_.non_empty()) class_reasons_[cls] = Reason(workers_, cls, queue_.spec(cls));
}

void Coordinator::DispatchLocked(Effects& fx) {
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

void Coordinator::AssignLocked(TaskEntry* e, WorkerEntry* w, Effects& fx) {
  pb::Task& t = e->task;
  const int64_t now = clock_->NowMs();
  t.set_attempts(std::max(t.attempts(), e->highest_attempt_seen) + 1);
  t.set_worker_device_id(w->caps.device_id());
  t.set_started_at_ms(0);
  t.clear_unschedulable_reason();
  t.clear_resource_usage();
  pb::Attempt* a = t.add_attempt_history();
  a->set_number(t.attempts());
  a->set_worker_device_id(w->caps.device_id());
  a->set_assigned_at_ms(now);
  a->set_status(pb::TASK_STATUS_ASSIGNED);
  tasks_.SetStatus(e, pb::TASK_STATUS_ASSIGNED);
  w->running.emplace(t.task_id(), t.attempts());
  if (t.attempt_history_size() == 1) dispatch_latency_.Observe((now - t.created_at_ms()) / 1000.0);
  w->last_task_type = t.spec().task_type();
  ++tasks_scheduled_;

  const size_t send = fx.IndexFor(w->link);
  pb::Assignment* as = fx.sends[send].second.add_assignments();
  as->set_task_id(t.task_id());
  as->set_attempt(t.attempts());
  as->set_task_type(t.spec().task_type());
  as->set_payload(t.spec().payload());
  if (NeedsPayload(*e)) fx.payloads_to_load[send].push_back(t.task_id());  // read off the lock
  const pb::Requirements& r = t.spec().requirements();
  as->set_timeout_seconds(TimeoutSeconds(r));
  as->set_internet_required(r.internet_required());
  as->set_owner(e->task.owner());
  as->mutable_metadata()->insert(t.spec().metadata().begin(), t.spec().metadata().end());
  ChangedLocked(e, fx);
}

absl::Duration RetryBackoff(int retry, absl::Duration initial, absl::Duration max, double random) {
  absl::Duration d = initial;
  for (int i = 1; i < retry && d < max; ++i) d *= 2;
  return std::min(d, max) * (0.5 + random / 2);
}

void Coordinator::EnqueueLocked(TaskEntry* e) {
  queue_.Push(e->cls, e->key, e->task.task_id());  // its original place in line
  if (!class_reasons_.contains(e->cls)) RefreshReasonLocked(e->cls);
}

void Coordinator::RetryOrFailLocked(TaskEntry* e, const std::string& why, Effects& fx) {
  pb::Task& t = e->task;
  const int64_t now = clock_->NowMs();
  if (t.attempt_history_size() > 0) {
    pb::Attempt* a = t.mutable_attempt_history(t.attempt_history_size() - 1);
    a->set_status(pb::TASK_STATUS_FAILED);
    a->set_error_message(why);
    a->set_finished_at_ms(now);
  }
  const pb::Requirements& r = t.spec().requirements();
  const int max_attempts = 1 + MaxRetries(r) + t.handed_back();
  if (t.attempts() < max_attempts) {
    tasks_.SetStatus(e, pb::TASK_STATUS_QUEUED);
    t.set_started_at_ms(0);
    t.clear_worker_device_id();  // the attempt history keeps where it ran
    t.set_error_message(why);    // the last failure, until an attempt succeeds
    absl::Duration wait = RetryBackoff(t.attempts(), options_.retry_backoff_initial, options_.retry_backoff_max,
                                       options_.random ? options_.random() : 0.5);
    t.set_next_attempt_at_ms(now + absl::ToInt64Milliseconds(wait));
    retry_at_.emplace(t.next_attempt_at_ms(), t.task_id());
  } else {
    tasks_.SetStatus(e, pb::TASK_STATUS_FAILED);
    t.set_error_message(absl::StrCat(why, " (attempt ", t.attempts(), " of ", max_attempts, "; no retries left)"));
    t.set_finished_at_ms(now);
  }
  ChangedLocked(e, fx);
}

void Coordinator::ReleaseRetriesLocked(int64_t now_ms, Effects& fx) {
  bool released = false;
  while (!retry_at_.empty() && retry_at_.begin()->first <= now_ms) {
    auto [at, id] = *retry_at_.begin();
    retry_at_.erase(retry_at_.begin());
    TaskEntry* e = tasks_.Find(id);
    // Skip entries made stale by a cancel (or a newer schedule).
    if (e == nullptr || e->task.status() != pb::TASK_STATUS_QUEUED || e->task.next_attempt_at_ms() != at) continue;
    e->task.set_next_attempt_at_ms(0);
    EnqueueLocked(e);
    ChangedLocked(e, fx);
    released = true;
  }
  if (released) DispatchLocked(fx);
}

}  // namespace rc::coordinator
