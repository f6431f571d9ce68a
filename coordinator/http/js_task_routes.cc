#include "coordinator/http/js_task_routes.h"

#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/js_task_json.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"
#include "coordinator/http/routes.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

constexpr int64_t kMaxVersion = INT32_MAX;

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// ?version=N: 0 when absent (the latest; for a remove, every version).
absl::StatusOr<int> VersionParam(const HttpRequest& req) {
  const std::string* v = req.Param("version");
  if (v == nullptr) return 0;
  int64_t n;
  if (!absl::SimpleAtoi(*v, &n) || n < 1 || n > kMaxVersion) {
    return Bad("version", absl::StrCat("expected a version number 1..", kMaxVersion, ", got '", *v, "'"));
  }
  return static_cast<int>(n);
}

// The body's "version": absent or null = the latest.
absl::StatusOr<int> VersionField(const json& body) {
  auto it = body.find("version");
  if (it == body.end() || it->is_null()) return 0;
  if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > kMaxVersion ||
      (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(kMaxVersion))) {
    return Bad("version", absl::StrCat("expected a version number 1..", kMaxVersion, ", got ", it->dump()));
  }
  return static_cast<int>(it->get<int64_t>());
}

absl::StatusOr<pb::PublishJsTaskRequest> PublishRequestFromJson(const json& j) {
  if (!j.is_object()) return Bad("body", "expected an object {\"code\": \"...\", \"name\"?: \"...\"}");
  for (const auto& [key, value] : j.items()) {
    if (key != "code" && key != "name") return Bad(key, "unknown field (expected code and name)");
  }
  pb::PublishJsTaskRequest r;
  auto code = j.find("code");
  if (code == j.end() || code->is_null()) return Bad("code", "required, the module's text");
  if (!code->is_string()) return Bad("code", "expected a string, the module's text");
  r.set_code(code->get<std::string>());
  if (auto name = j.find("name"); name != j.end() && !name->is_null()) {
    if (!name->is_string()) return Bad("name", "expected a string");
    r.set_name(name->get<std::string>());
  }
  return r;
}

// The task POST /js-tasks/{name}/run submits: the body's task fields as POST /tasks reads
// them, task type js, and the payload {"memory_mb"?, "name", "version"?, "input"}.
absl::StatusOr<pb::TaskSpec> RunSpecFromJson(const std::string& name, json body) {
  if (body.is_null()) body = json::object();  // no body at all: run on {}
  if (!body.is_object()) return Bad("body", "expected an object {\"input\"?, \"version\"?, \"memory_mb\"?, ...}");
  if (body.contains("task_type")) return Bad("task_type", "set by the route: a published task runs as task type js");
  if (body.contains("payload")) return Bad("payload", "built from input, version and memory_mb; give those instead");
  absl::StatusOr<int> version = VersionField(body);
  if (!version.ok()) return version.status();
  json input = json::object();
  if (auto it = body.find("input"); it != body.end()) input = *it;
  json extra = json::object();
  // Checked by the coordinator for every js task (range 1..2048), naming payload.memory_mb.
  if (auto it = body.find("memory_mb"); it != body.end() && !it->is_null()) extra["memory_mb"] = *it;
  absl::StatusOr<std::string> payload = JsRunPayload(name, *version, input, "input", extra);
  if (!payload.ok()) return payload.status();
  body.erase("input");
  body.erase("version");
  body.erase("memory_mb");
  body["task_type"] = "js";
  absl::StatusOr<pb::TaskSpec> spec = TaskSpecFromJson(body);
  if (!spec.ok()) return spec.status();
  spec->set_payload(*std::move(payload));
  return spec;
}

void Run(const std::string& name, ClientApi* api, Deferrer* deferrer, const HttpRequest& req,
         const std::shared_ptr<Responder>& res, const Principal& who) {
  // An empty body is a run on {} with the defaults (curl -X POST .../run).
  absl::StatusOr<json> body = req.body.empty() ? absl::StatusOr<json>(json()) : JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  absl::StatusOr<pb::TaskSpec> spec = RunSpecFromJson(name, *std::move(body));
  if (!spec.ok()) return res->Reply(StatusResponse(spec.status()));
  std::optional<double> wait;
  if (const std::string* w = req.Param("wait"); w != nullptr) {
    double seconds;
    absl::StatusOr<double> s = ClientApi::WaitSeconds(absl::SimpleAtod(*w, &seconds) ? seconds : std::nan(""));
    // The rule's words name its usual parameter (timeout); here it is `wait`.
    if (!s.ok()) return res->Reply(StatusResponse(Bad("wait", absl::StripPrefix(s.status().message(), "timeout: "))));
    wait = *s;
  }
  api->Submit(who, *std::move(spec), [api, deferrer, who, wait, res](absl::StatusOr<SubmitResult> r) {
    if (!r.ok()) return res->Reply(StatusResponse(r.status()));
    if (!wait.has_value()) {
      return res->Reply(
          JsonResponse(r->existing ? 200 : 201, Json{{"task_id", r->task_id}, {"status", StatusName(r->status)}}));
    }
    // The submit may answer on a thread that must not call back into the core: hop.
    deferrer->Post([api, deferrer, who, seconds = *wait, res, id = r->task_id] {
      AwaitTask(api, deferrer, who, id, seconds, res, [](const pb::Task& t) { return JsonResponse(200, TaskToJson(t)); });
    });
  });
}

}  // namespace

std::optional<JsTaskMatch> MatchJsTaskRoute(absl::string_view method, const std::vector<absl::string_view>& p) {
  if (p.size() < 2 || !p[0].empty() || p[1] != "js-tasks") return std::nullopt;
  if (p.size() == 2) {
    if (method == "GET") return JsTaskMatch{JsTaskRoute::kList, ClientOp::kReadJsTasks, ""};
    if (method == "POST") return JsTaskMatch{JsTaskRoute::kPublish, ClientOp::kPublishJsTask, ""};
    return std::nullopt;
  }
  if (p[2].empty()) return std::nullopt;
  const std::string name(p[2]);
  if (p.size() == 3) {
    if (method == "GET") return JsTaskMatch{JsTaskRoute::kGet, ClientOp::kReadJsTasks, name};
    if (method == "DELETE") return JsTaskMatch{JsTaskRoute::kRemove, ClientOp::kPublishJsTask, name};
    return std::nullopt;
  }
  if (p.size() == 4 && p[3] == "run" && method == "POST") return JsTaskMatch{JsTaskRoute::kRun, ClientOp::kSubmit, name};
  return std::nullopt;
}

void HandleJsTaskRoute(const JsTaskMatch& match, ClientApi* api, Deferrer* deferrer, const HttpRequest& req,
                       const std::shared_ptr<Responder>& res, const Principal& who) {
  switch (match.route) {
    case JsTaskRoute::kList: {
      absl::StatusOr<std::vector<pb::JsTask>> tasks = api->ListJsTasks(who);
      return res->Reply(tasks.ok() ? JsonResponse(200, JsTaskListJson(*tasks)) : StatusResponse(tasks.status()));
    }
    case JsTaskRoute::kPublish: {
      absl::StatusOr<json> body = JsonBody(req);
      if (!body.ok()) return res->Reply(StatusResponse(body.status()));
      absl::StatusOr<pb::PublishJsTaskRequest> request = PublishRequestFromJson(*body);
      if (!request.ok()) return res->Reply(StatusResponse(request.status()));
      absl::StatusOr<pb::PublishJsTaskResponse> r = api->PublishJsTask(who, *request);
      if (!r.ok()) return res->Reply(StatusResponse(r.status()));
      return res->Reply(JsonResponse(r->unchanged() ? 200 : 201, PublishJsTaskJson(*r)));
    }
    case JsTaskRoute::kGet: {
      absl::StatusOr<int> version = VersionParam(req);
      if (!version.ok()) return res->Reply(StatusResponse(version.status()));
      absl::StatusOr<pb::JsTask> t = api->GetJsTask(who, match.name, *version);
      return res->Reply(t.ok() ? JsonResponse(200, JsTaskToJson(*t)) : StatusResponse(t.status()));
    }
    case JsTaskRoute::kRemove: {
      absl::StatusOr<int> version = VersionParam(req);
      if (!version.ok()) return res->Reply(StatusResponse(version.status()));
      absl::StatusOr<pb::RemoveJsTaskResponse> r = api->RemoveJsTask(who, match.name, *version);
      return res->Reply(r.ok() ? JsonResponse(200, Json{{"removed_versions", r->removed_versions()}})
                               : StatusResponse(r.status()));
    }
    case JsTaskRoute::kRun: return Run(match.name, api, deferrer, req, res, who);
  }
}

}  // namespace rc::coordinator::http
