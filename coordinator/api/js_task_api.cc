// ClientApi's published JavaScript tasks (DESIGN.md "JavaScript tasks"): who may call
// what, and the registry (coordinator/core/js_tasks.h) for the rest. The submit role
// publishes and removes its own names (the registry checks the owner), admin any; the
// read role lists and shows; a task token lists, shows and runs (a submit by name) but
// may not publish or remove (common/auth.h, Action::kPublishJsTasks).
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/api/client_api.h"

namespace rc::coordinator {
namespace {

JsPublisher PublisherOf(const Principal& who) { return JsPublisher{who.name, who.role == Role::kAdmin}; }

}  // namespace

absl::StatusOr<pb::PublishJsTaskResponse> ClientApi::PublishJsTask(const Principal& who,
                                                                   const pb::PublishJsTaskRequest& request) {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kPublishJsTask));
  ASSIGN_OR_RETURN(JsTaskRegistry::Published published,
                   js_tasks_->Publish(request.code(), request.name(), PublisherOf(who)));
  pb::PublishJsTaskResponse out;
  *out.mutable_task() = std::move(published.task);
  out.set_unchanged(published.unchanged);
  return out;
}

absl::StatusOr<std::vector<pb::JsTask>> ClientApi::ListJsTasks(const Principal& who) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kReadJsTasks));
  return js_tasks_->List();
}

absl::StatusOr<pb::JsTask> ClientApi::GetJsTask(const Principal& who, const std::string& name, int version) const {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kReadJsTasks));
  return js_tasks_->Get(name, version);
}

absl::StatusOr<pb::RemoveJsTaskResponse> ClientApi::RemoveJsTask(const Principal& who, const std::string& name,
                                                                 int version) {
  RETURN_IF_ERROR(AllowOp(who, ClientOp::kPublishJsTask));
  ASSIGN_OR_RETURN(int32_t removed, js_tasks_->Remove(name, version, PublisherOf(who)));
  pb::RemoveJsTaskResponse out;
  out.set_removed_versions(removed);
  return out;
}

}  // namespace rc::coordinator
