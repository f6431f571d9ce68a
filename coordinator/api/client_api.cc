#include "coordinator/api/client_api.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/core/task_tokens.h"

namespace rc::coordinator {
namespace {

// Who may call what: each operation's action for Authorize (common/auth.h, the role rule),
// and whether it is decided on the task (its owner) rather than up front.
struct OpRule {
  Action action;
  bool per_task;
};

constexpr OpRule Rule(ClientOp op) {
  switch (op) {
    case ClientOp::kSubmit: return {Action::kSubmit, false};
    case ClientOp::kGetTask: return {Action::kReadTask, true};
    case ClientOp::kWatchTask: return {Action::kReadTask, true};
    case ClientOp::kCancelTask: return {Action::kCancel, true};
    case ClientOp::kListTasks: return {Action::kListTasks, false};
    case ClientOp::kListWorkers: return {Action::kReadCluster, false};
    case ClientOp::kGetStats: return {Action::kReadCluster, false};
    case ClientOp::kMetrics: return {Action::kReadCluster, false};
    case ClientOp::kDrainWorker: return {Action::kDrain, false};
    case ClientOp::kPublishJsTask: return {Action::kPublishJsTasks, false};
    case ClientOp::kReadJsTasks: return {Action::kListTasks, false};
    case ClientOp::kCompleteTask: return {Action::kSubmit, true};  // no role may: AllowOp decides
  }
  return {Action::kDrain, false};  // unreachable: the admin role only
}

// A batch entry's error, named by its place in the request.
absl::Status EntryError(absl::string_view field, size_t i, const absl::Status& s) {
  const bool names_a_field = s.code() == absl::StatusCode::kInvalidArgument;
  return absl::Status(s.code(), absl::StrCat(field, "[", i, names_a_field ? "]." : "]: ", s.message()));
}

// What a task token may not see: the digest of its own kind. Snapshots from memory come
// without it (CoordinatorState::SnapshotLocked); records read from the store may not.
void Strip(pb::Task& t) { t.clear_attempt_token_sha256(); }

// A watcher's sink that strips every snapshot before passing it on.
class StrippingSink final : public TaskSink {
 public:
  explicit StrippingSink(std::shared_ptr<TaskSink> inner) : inner_(std::move(inner)) {}
  void OnTask(pb::Task t) override {
    if (!t.attempt_token_sha256().empty()) Strip(t);
    inner_->OnTask(std::move(t));
  }
  void Abort(absl::Status status) override { inner_->Abort(std::move(status)); }
  bool TerminalOnly() const override { return inner_->TerminalOnly(); }

 private:
  const std::shared_ptr<TaskSink> inner_;
};

absl::Status OutsideSubtree(const TaskCaller& caller, absl::string_view verb) {
  return absl::PermissionDeniedError(
      absl::StrCat("a task token may only ", verb, " tasks of its own subtree (", caller.task_id, ")"));
}

// Task ids are "task-" and hex digits; anything of another shape names no task. Not quoted
// past the limit (it could be anything).
absl::Status CheckTaskIdField(absl::string_view field, absl::string_view id) {
  constexpr size_t kMaxIdLength = 128;
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a task id is at most ", kMaxIdLength, " characters"));
  }
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(field, ": '", id, "' is not a task id"));
    }
  }
  return absl::OkStatus();
}

// `spec`'s after_index entries (entry `i` of a request) as indices among the entries the
// core gets. Only earlier entries are renumbered; a later one is left for the core to
// refuse (it is no earlier entry either way).
absl::Status RenumberAfter(pb::TaskSpec* spec, size_t i, const std::vector<absl::Status>& refused,
                           const std::vector<size_t>& core_index) {
  for (int k = 0; k < spec->after_size(); ++k) {
    pb::Dependency* d = spec->mutable_after(k);
    if (!d->has_after_index() || d->after_index() < 0 || static_cast<size_t>(d->after_index()) >= i) continue;
    const auto j = static_cast<size_t>(d->after_index());
    if (!refused[j].ok()) {
      return absl::InvalidArgumentError(absl::StrCat("after[", k, "].after_index: entry ", j, " of this batch was refused"));
    }
    d->set_after_index(static_cast<int32_t>(core_index[j]));
  }
  return absl::OkStatus();
}

}  // namespace

bool InSubtreeOf(const pb::Task& t, absl::string_view task_id) {
  if (t.task_id() == task_id) return true;
  for (const std::string& a : t.ancestor_task_ids()) {
    if (a == task_id) return true;
  }
  return false;
}

Submitter SubmitterFor(const Principal& who) {
  Submitter by(who.name);
  if (who.task.has_value()) by.parent_task_id = who.task->task_id;
  // `after` may name only tasks the caller may read: its own (submit role), its subtree
  // (a task token), any (admin).
  by.may_depend_on = TaskAccessFor(who, ClientOp::kGetTask);
  return by;
}

absl::Status AllowOp(const Principal& who, ClientOp op) {
  if (op == ClientOp::kCompleteTask) return AllowCompletion(who);
  const OpRule rule = Rule(op);
  if (rule.per_task) return absl::OkStatus();
  return Authorize(who, rule.action);
}

TaskAccess TaskAccessFor(const Principal& who, ClientOp op) {
  return [who, op, action = Rule(op).action](const pb::Task& t) {
    if (who.task.has_value() && !InSubtreeOf(t, who.task->task_id)) {
      return OutsideSubtree(*who.task, op == ClientOp::kCancelTask ? "cancel" : "read");
    }
    return Authorize(who, action, t.owner());
  };
}

ClientApi::ClientApi(Coordinator* core, const TokenTable* tokens, JsTaskRegistry* js_tasks)
    : core_(core), tokens_(tokens != nullptr ? tokens : &no_tokens_) {
  if (js_tasks == nullptr) {
    own_js_store_ = std::make_unique<MemoryJsTaskStore>();
    own_js_tasks_ = std::make_unique<JsTaskRegistry>(own_js_store_.get(), RealClock::Get(), TaskLimits().max_payload_bytes);
    js_tasks = own_js_tasks_.get();
  }
  js_tasks_ = js_tasks;
}

absl::StatusOr<Principal> ClientApi::Admit(ClientOp op, absl::string_view authorization,
                                           absl::FunctionRef<Peer()> peer) const {
  absl::StatusOr<Principal> who = absl::UnauthenticatedError("");
  if (const absl::string_view bearer = BearerToken(authorization); IsTaskToken(bearer)) {
    ASSIGN_OR_RETURN(TaskTokenHolder holder, core_->CheckTaskToken(bearer));
    who = Principal{Role::kSubmit, std::move(holder.owner),
                    TaskCaller{std::move(holder.task_id), holder.attempt, std::move(holder.root_task_id), holder.depth}};
  } else if (tokens_->has_client_tokens()) {
    who = AuthenticateClient(*tokens_, authorization, "");
  } else {
    const Peer p = peer();
    who = AuthenticateClient(*tokens_, authorization, p.address, p.certified);
  }
  if (!who.ok()) return who;
  RETURN_IF_ERROR(AllowOp(*who, op));
  return who;
}

void ClientApi::Submit(const Principal& who, pb::TaskSpec spec, SubmitDone done) {
  if (absl::Status allowed = AllowOp(who, ClientOp::kSubmit); !allowed.ok()) return done(allowed);
  // A published task's name becomes its code here, so every transport (and children
  // submitted through a task's socket) runs what was current at submit.
  if (absl::Status resolved = js_tasks_->Resolve(&spec); !resolved.ok()) return done(resolved);
  core_->Submit(std::move(spec), std::move(done), SubmitterFor(who));
}

absl::Status ClientApi::CheckBatchSize(absl::string_view field, size_t n) {
  if (n == 0 || n > kMaxBatchTasks) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a batch holds 1..", kMaxBatchTasks, " tasks, got ", n));
  }
  return absl::OkStatus();
}

void ClientApi::SubmitBatch(const Principal& who, absl::string_view field,
                            std::vector<absl::StatusOr<pb::TaskSpec>> specs, BatchDone done) {
  if (absl::Status allowed = AllowOp(who, ClientOp::kSubmit); !allowed.ok()) return done(allowed);
  if (absl::Status size = CheckBatchSize(field, specs.size()); !size.ok()) return done(size);
  // The entries the front-end refused keep their place (refused[i] not OK); the others go
  // to the core as one batch (one commit) and are answered in order.
  auto refused = std::make_shared<std::vector<absl::Status>>(specs.size());
  std::vector<pb::TaskSpec> valid;
  valid.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].ok()) (*refused)[i] = js_tasks_->Resolve(&*specs[i]);
    if (!specs[i].ok()) (*refused)[i] = specs[i].status();
  }
  // The core numbers the entries it gets: an after_index counts in the request, so it is
  // renumbered past refused entries (one that waits for a refused entry is refused too).
  std::vector<size_t> core_index(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    core_index[i] = valid.size();
    if (!(*refused)[i].ok()) continue;
    (*refused)[i] = RenumberAfter(&*specs[i], i, *refused, core_index);
    if ((*refused)[i].ok()) valid.push_back(*std::move(specs[i]));
  }
  core_->SubmitBatch(
      std::move(valid),
      [refused, field = std::string(field), done = std::move(done)](std::vector<absl::StatusOr<SubmitResult>> core) {
        std::vector<absl::StatusOr<SubmitResult>> out;
        out.reserve(refused->size());
        for (size_t i = 0, next = 0; i < refused->size(); ++i) {
          absl::StatusOr<SubmitResult> r = absl::InternalError("the core gave no answer");
          if (!(*refused)[i].ok()) {
            r = (*refused)[i];
          } else if (next < core.size()) {
            r = std::move(core[next++]);
          }
          if (!r.ok()) r = EntryError(field, i, r.status());
          out.push_back(std::move(r));
        }
        done(std::move(out));
      },
      SubmitterFor(who));
}

absl::StatusOr<pb::Task> ClientApi::GetTask(const Principal& who, const std::string& task_id) const {
  ASSIGN_OR_RETURN(pb::Task task, core_->GetTask(task_id));
  RETURN_IF_ERROR(TaskAccessFor(who, ClientOp::kGetTask)(task));
  Strip(task);
  return task;
}

void ClientApi::Cancel(const Principal& who, const std::string& task_id, CancelDone done) {
  // A task caller is named by its task too: "cancelled by alice (task task-..)".
  std::string by = who.name;
  if (who.task.has_value()) {
    by = who.name.empty() ? absl::StrCat("task ", who.task->task_id)
                          : absl::StrCat(who.name, " (task ", who.task->task_id, ")");
  }
  core_->Cancel(task_id, std::move(done), TaskAccessFor(who, ClientOp::kCancelTask), by);
}

absl::StatusOr<std::vector<pb::Task>> ClientApi::ListTasks(const Principal& who, const TaskListQuery& query) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kListTasks));
  // An enum value this build does not know (a newer client, a typo over raw protobuf)
  // would match no task and answer an empty list.
  if (!pb::TaskStatus_IsValid(query.status)) {
    return absl::InvalidArgumentError(absl::StrCat("status: unknown TaskStatus value ", query.status));
  }
  const int64_t limit = query.limit.value_or(kDefaultListLimit);
  if (limit < 1 || limit > kMaxListLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit: must be 1..", kMaxListLimit, ", got ", limit));
  }
  RETURN_IF_ERROR(CheckTaskIdField("parent_task_id", query.parent_task_id));
  if (who.task.has_value()) {
    if (query.parent_task_id.empty()) {
      return absl::PermissionDeniedError(absl::StrCat("a task token may only list tasks of its own subtree (",
                                                      who.task->task_id, "): give parent_task_id"));
    }
    ASSIGN_OR_RETURN(pb::Task parent, core_->GetTask(query.parent_task_id));
    if (!InSubtreeOf(parent, who.task->task_id)) return OutsideSubtree(*who.task, "list");
  }
  TaskFilter f;
  if (who.role == Role::kSubmit) f.owner = who.name;  // its own tasks only
  f.status = query.status;
  f.task_type = query.task_type;
  f.worker_device_id = query.worker_device_id;
  f.parent_task_id = query.parent_task_id;
  f.limit = static_cast<int>(limit);
  ASSIGN_OR_RETURN(std::vector<pb::Task> tasks, core_->ListTasks(f));
  for (pb::Task& t : tasks) Strip(t);
  return tasks;
}

absl::StatusOr<uint64_t> ClientApi::Watch(const Principal& who, const std::string& task_id,
                                          std::shared_ptr<TaskSink> sink) {
  return core_->Watch(task_id, std::make_shared<StrippingSink>(std::move(sink)),
                      TaskAccessFor(who, ClientOp::kWatchTask));
}

std::vector<absl::StatusOr<uint64_t>> ClientApi::WatchAll(const Principal& who,
                                                          const std::vector<std::string>& task_ids,
                                                          std::shared_ptr<TaskSink> sink) {
  return core_->WatchAll(task_ids, std::make_shared<StrippingSink>(std::move(sink)),
                         TaskAccessFor(who, ClientOp::kWatchTask));
}

void ClientApi::Unwatch(const std::string& task_id, uint64_t watch_id) { core_->Unwatch(task_id, watch_id); }

absl::StatusOr<double> ClientApi::WaitSeconds(std::optional<double> requested) {
  if (!requested.has_value()) return kDefaultWaitSeconds;
  if (!(*requested > 0) || *requested > kMaxWaitSeconds) {  // NaN fails the first test
    return absl::InvalidArgumentError(absl::StrCat("timeout: expected seconds in (0, ", kMaxWaitSeconds, "]"));
  }
  return *requested;
}

absl::StatusOr<std::vector<pb::Worker>> ClientApi::ListWorkers(const Principal& who,
                                                               const std::string& device_id) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kListWorkers));
  std::vector<pb::Worker> workers = core_->ListWorkers(device_id);
  if (!device_id.empty() && workers.empty()) {
    return absl::NotFoundError(absl::StrCat("no worker with device id '", device_id, "'"));
  }
  return workers;
}

absl::StatusOr<bool> ClientApi::OffersTaskType(const Principal& who, absl::string_view task_type,
                                               const std::string& device_id) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kSubmit));
  for (const pb::Worker& w : core_->ListWorkers(device_id)) {
    if (w.status() != pb::WORKER_STATUS_ONLINE || w.drained()) continue;
    for (const std::string& t : w.capabilities().task_types()) {
      if (t == task_type) return true;
    }
  }
  return false;
}

absl::StatusOr<pb::Worker> ClientApi::DrainWorker(const Principal& who, const std::string& device_id, bool drain) {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kDrainWorker));
  return core_->DrainWorker(device_id, drain);
}

absl::StatusOr<pb::Stats> ClientApi::Stats(const Principal& who) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kGetStats));
  return core_->Stats();
}

absl::StatusOr<ClusterMetrics> ClientApi::Metrics(const Principal& who) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kMetrics));
  ClusterMetrics m;
  m.stats = core_->Stats();
  m.workers = core_->ListWorkers("");
  m.counts_by_type = core_->CountsByType();
  m.dispatch_latency = &core_->dispatch_latency();
  m.end_to_end_latency = &core_->end_to_end_latency();
  return m;
}

}  // namespace rc::coordinator
