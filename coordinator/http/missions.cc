#include "coordinator/http/missions.h"

#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/task_names.h"
#include "coordinator/http/routes.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status OnlyKnown(const json& j, std::initializer_list<absl::string_view> known) {
  for (const auto& [key, value] : j.items()) {
    bool ok = false;
    for (absl::string_view k : known) ok = ok || key == k;
    if (!ok) return Bad(key, "unknown field");
  }
  return absl::OkStatus();
}

// The field, or nullptr when it is absent or null.
const json* Field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<bool> OptionalBool(const json& j, const char* key) {
  const json* v = Field(j, key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) return Bad(key, "expected true or false");
  return v->get<bool>();
}

// The seed's executor numbers its devices (123); ours are named: both are accepted.
absl::StatusOr<std::string> DeviceId(const json& j) {
  const json* v = Field(j, "target_device_id");
  if (v == nullptr) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number_integer()) return v->dump();  // signed and unsigned alike
  return Bad("target_device_id", "expected a string or an integer");
}

Json TaskMetadata(const pb::Task& t) {
  return Json{{"task_id", t.task_id()},
              {"device_id", t.worker_device_id().empty() ? Json(nullptr) : Json(t.worker_device_id())},
              {"status", StatusName(t.status())},
              {"attempts", t.attempts()}};
}

}  // namespace

absl::StatusOr<Mission> MissionSpecFromJson(const json& j) {
  if (!j.is_object()) return Bad("body", "expected a mission object");
  RETURN_IF_ERROR(OnlyKnown(j, {"mission_id", "code", "requirements", "browser_interaction", "keep_alive",
                                "target_device_id", "timeout", "metadata"}));
  Mission m;
  const json* id = Field(j, "mission_id");
  if (id == nullptr) return Bad("mission_id", "required, a non-empty string");
  if (!id->is_string() || id->get<std::string>().empty()) return Bad("mission_id", "expected a non-empty string");
  m.mission_id = id->get<std::string>();

  const json* code = Field(j, "code");
  if (code == nullptr) return Bad("code", "required, Python source");
  if (!code->is_string()) return Bad("code", "expected a string of Python source");

  json requirements = json::array();
  if (const json* r = Field(j, "requirements"); r != nullptr) {
    if (!r->is_array()) return Bad("requirements", "expected a list of package names");
    for (size_t i = 0; i < r->size(); ++i) {
      if (!(*r)[i].is_string()) return Bad(absl::StrCat("requirements[", i, "]"), "expected a string");
    }
    requirements = *r;
  }
  ASSIGN_OR_RETURN(m.browser_interaction, OptionalBool(j, "browser_interaction"));
  ASSIGN_OR_RETURN(const bool keep_alive, OptionalBool(j, "keep_alive"));
  ASSIGN_OR_RETURN(const std::string device, DeviceId(j));

  if (const json* t = Field(j, "timeout"); t != nullptr) {
    if (!t->is_number()) return Bad("timeout", "expected a number of seconds");
    const double seconds = t->get<double>();
    if (!(seconds > 0) || !(seconds <= kMaxMissionTimeoutSeconds)) {  // NaN cannot come from JSON; inf can (1e999)
      return Bad("timeout", absl::StrCat("must be greater than 0 and at most ", static_cast<int64_t>(kMaxMissionTimeoutSeconds),
                                         " seconds (30 days), got ", t->dump()));
    }
    m.timeout_seconds = seconds;
  }

  pb::TaskSpec& spec = m.spec;
  if (const json* meta = Field(j, "metadata"); meta != nullptr) {
    if (!meta->is_object()) return Bad("metadata", "expected an object");
    for (const auto& [key, value] : meta->items()) {
      const std::string field = absl::StrCat("metadata.", key);
      if (value.is_string()) {
        (*spec.mutable_metadata())[key] = value.get<std::string>();
        continue;
      }
      RETURN_IF_ERROR(CheckJsonDepth(value, field));  // dump recurses once per level
      (*spec.mutable_metadata())[key] = value.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  if (auto it = spec.metadata().find("mission_id"); it != spec.metadata().end() && it->second != m.mission_id) {
    return Bad("metadata.mission_id", "reserved: set from mission_id");
  }
  (*spec.mutable_metadata())["mission_id"] = m.mission_id;

  spec.set_task_type("python_script");
  json payload = {{"code", *code}, {"requirements", requirements}, {"keep_alive", keep_alive},
                  {"timeout", m.timeout_seconds}};
  // The script drives the worker's persistent browser of profile "default" (RC_CDP_URL in
  // its environment); keep_alive also decides whether that browser outlives the mission.
  if (m.browser_interaction) payload["browser"] = {{"profile", "default"}, {"keep_alive", keep_alive}};
  spec.set_payload(payload.dump(-1, ' ', false, json::error_handler_t::replace));
  spec.mutable_requirements()->set_timeout_seconds(m.timeout_seconds);
  spec.mutable_requirements()->set_target_device_id(device);
  // A mission runs at most once, as the executor ran it: a failed script is not run again
  // (its side effects would repeat, and the answer would wait for every retry); a lost
  // worker ends it failed.
  spec.mutable_requirements()->set_max_retries(0);
  return m;
}

Json MissionResultJson(absl::string_view mission_id, const pb::Task& t) {
  const bool success = t.status() == pb::TASK_STATUS_SUCCESS;
  Json error = nullptr;
  if (!success) {
    error = t.error_message().empty() ? absl::StrCat("task ended ", StatusName(t.status())) : t.error_message();
  }
  return Json{{"mission_id", mission_id}, {"success", success},
              {"stdout", t.stdout()},     {"stderr", t.stderr()},
              {"exit_code", t.exit_code()}, {"execution_time", t.execution_time_seconds()},
              {"error", error},           {"metadata", TaskMetadata(t)}};
}

Json MissionPendingJson(absl::string_view mission_id, const pb::Task& t, const std::string& error) {
  return Json{{"mission_id", mission_id}, {"success", false},     {"stdout", t.stdout()},
              {"stderr", t.stderr()},     {"exit_code", nullptr}, {"execution_time", nullptr},
              {"error", error},           {"metadata", TaskMetadata(t)}};
}

Json MissionRefusedJson(absl::string_view mission_id, const std::string& error) {
  return Json{{"mission_id", mission_id},
              {"success", false},
              {"stdout", ""},
              {"stderr", ""},
              {"exit_code", nullptr},
              {"execution_time", nullptr},
              {"error", error},
              {"metadata", {{"task_id", nullptr}, {"device_id", nullptr}, {"status", nullptr}, {"attempts", 0}}}};
}

absl::StatusOr<BrowserRequest> BrowserRequestFromJson(const json& j) {
  if (!j.is_object()) return Bad("body", "expected an object with an operation");
  RETURN_IF_ERROR(OnlyKnown(j, {"operation", "port", "target_device_id"}));
  BrowserRequest r;
  const json* op = Field(j, "operation");
  if (op == nullptr) return Bad("operation", "required: start, stop or status");
  if (!op->is_string()) return Bad("operation", "expected start, stop or status");
  r.operation = op->get<std::string>();
  if (r.operation != "start" && r.operation != "stop" && r.operation != "status") {
    return Bad("operation", absl::StrCat("unknown operation '", r.operation, "': expected start, stop or status"));
  }
  if (const json* p = Field(j, "port"); p != nullptr) {
    const bool in_range = p->is_number_integer() && p->get<int64_t>() >= 1 && p->get<int64_t>() <= 65535;
    if (!in_range) return Bad("port", absl::StrCat("expected a port number 1..65535, got ", p->dump()));
    r.port = static_cast<int>(p->get<int64_t>());
  }
  ASSIGN_OR_RETURN(r.target_device_id, DeviceId(j));
  return r;
}

pb::TaskSpec BrowserTaskSpec(const BrowserRequest& r) {
  pb::TaskSpec spec;
  spec.set_task_type("browser");
  // No port: the browser task chooses its CDP port (on 127.0.0.1) and reports cdp_url.
  spec.set_payload(json{{"operation", r.operation}, {"profile", "default"}}.dump());
  spec.mutable_requirements()->set_timeout_seconds(kBrowserTaskTimeoutSeconds);
  spec.mutable_requirements()->set_target_device_id(r.target_device_id);
  return spec;
}

Json BrowserResultJson(const BrowserRequest& r, const pb::Task& t, const std::string& message_if_unfinished) {
  Json out = BrowserRefusedJson(message_if_unfinished);
  out["task_id"] = t.task_id();
  if (!IsTerminal(t.status())) return out;
  if (t.status() != pb::TASK_STATUS_SUCCESS) {
    out["message"] = t.error_message().empty() ? absl::StrCat("browser task ended ", StatusName(t.status()))
                                               : t.error_message();
    return out;
  }
  const Json result = ParseOrString(t.result());
  const bool running = result.is_object() && result.value("running", Json(false)).is_boolean() &&
                       result.value("running", false);
  Json cdp = nullptr;
  if (result.is_object() && result.contains("cdp_url") && result["cdp_url"].is_string()) cdp = result["cdp_url"];
  out["success"] = true;
  out["is_running"] = running;
  out["cdp_url"] = cdp;
  if (running) {
    out["message"] = cdp.is_string() ? absl::StrCat("browser running at ", cdp.get<std::string>()) : "browser running";
  } else {
    out["message"] = r.operation == "stop" ? "browser stopped" : "browser not running";
  }
  return out;
}

Json BrowserRefusedJson(const std::string& message) {
  return Json{{"success", false}, {"is_running", false}, {"cdp_url", nullptr}, {"message", message}};
}

// ---- The routes ----

namespace {

// ?wait=0 answers 202 with the task id as soon as the task is accepted (for callers whose
// HTTP client gives up sooner than the mission runs); absent or 1 waits for its end.
absl::StatusOr<bool> WaitWanted(const HttpRequest& req) {
  const std::string* w = req.Param("wait");
  if (w == nullptr || *w == "1" || *w == "true") return true;
  if (*w == "0" || *w == "false") return false;
  return Bad("wait", absl::StrCat("expected 0 or 1, got '", *w, "'"));
}

std::string WaitHint(const std::string& task_id) { return absl::StrCat("GET /tasks/", task_id, "/wait"); }

std::string StillText(const pb::Task& t, double waited) {
  return absl::StrCat("still ", StatusName(t.status()), " after ", waited, " s: ", WaitHint(t.task_id()));
}

std::string NotWaitedText(const std::string& task_id) {
  return absl::StrCat("accepted, not waited for (wait=0): ", WaitHint(task_id));
}

// A task as the submit answer knows it, for the wait=0 reply.
pb::Task Accepted(const SubmitResult& r) {
  pb::Task t;
  t.set_task_id(r.task_id);
  t.set_status(r.status);
  return t;
}

// Submits `spec`; then answers 202 `not_waited(task)` (wait=0), or waits up to `seconds`
// for the task's end and answers `reply`. The watch starts from a Deferrer hop: the
// submit's answer may come on a thread that must not call back into the core.
void SubmitAndAwait(ClientApi* api, Deferrer* deferrer, const Principal& who, pb::TaskSpec spec, bool wait,
                    double seconds, const std::shared_ptr<Responder>& res,
                    std::function<HttpResponse(const pb::Task&)> not_waited, TaskReply reply) {
  api->Submit(who, std::move(spec),
              [api, deferrer, who, wait, seconds, res, not_waited = std::move(not_waited),
               reply = std::move(reply)](absl::StatusOr<SubmitResult> r) mutable {
                if (!r.ok()) return res->Reply(StatusResponse(r.status()));
                if (!wait) return res->Reply(not_waited(Accepted(*r)));
                deferrer->Post([api, deferrer, who, seconds, res, id = r->task_id, reply = std::move(reply)]() mutable {
                  AwaitTask(api, deferrer, who, id, seconds, res, std::move(reply));
                });
              });
}

// Why no worker can take a task of `type` now (ClientApi::OffersTaskType said no).
std::string NoWorkerOffers(absl::string_view type, const std::string& device) {
  if (device.empty()) return absl::StrCat("no connected worker offers task type '", type, "'");
  return absl::StrCat("worker '", device, "' is not connected or does not offer task type '", type, "'");
}

}  // namespace

void BridgeRoutes::ExecuteMission(const HttpRequest& req, const std::shared_ptr<Responder>& res,
                                  const Principal& who) {
  absl::StatusOr<json> body = JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  absl::StatusOr<Mission> mission = MissionSpecFromJson(*body);
  if (!mission.ok()) return res->Reply(StatusResponse(mission.status()));
  absl::StatusOr<bool> wait = WaitWanted(req);
  if (!wait.ok()) return res->Reply(StatusResponse(wait.status()));
  const std::string id = mission->mission_id;
  if (mission->browser_interaction && *wait) {
    // The script gets the worker's persistent browser ("browser" in its payload), which
    // only a worker offering `browser` has; a waiting caller learns at once when none is
    // connected, as for python_script below.
    const std::string& device = mission->spec.requirements().target_device_id();
    absl::StatusOr<bool> offered = api_->OffersTaskType(who, "browser", device);
    if (!offered.ok()) return res->Reply(StatusResponse(offered.status()));
    if (!*offered) {
      return res->Reply(JsonResponse(
          503, MissionRefusedJson(id, absl::StrCat("no worker can run browser tasks: ",
                                                   NoWorkerOffers("browser", device),
                                                   " (start a worker with --allow browser,python_script and Chromium "
                                                   "installed); nothing was submitted: send it with ?wait=0 to queue it "
                                                   "until such a worker joins"))));
    }
  }
  if (*wait) {
    // A caller that waits for the answer learns at once that nothing could run it, instead
    // of after timeout + kMissionQueueAllowanceSeconds; ?wait=0 still queues the mission
    // for a worker that joins later (a device that is asleep now).
    const std::string& device = mission->spec.requirements().target_device_id();
    absl::StatusOr<bool> offered = api_->OffersTaskType(who, "python_script", device);
    if (!offered.ok()) return res->Reply(StatusResponse(offered.status()));
    if (!*offered) {
      return res->Reply(JsonResponse(
          503, MissionRefusedJson(id, absl::StrCat("no worker can run this mission now: ",
                                                   NoWorkerOffers("python_script", device),
                                                   " (workers need --allow python_script); nothing was submitted: "
                                                   "send it with ?wait=0 to queue it until such a worker joins"))));
    }
  }
  const double seconds = mission->timeout_seconds + kMissionQueueAllowanceSeconds;
  SubmitAndAwait(
      api_, deferrer_, who, std::move(mission->spec), *wait, seconds, res,
      [id](const pb::Task& t) { return JsonResponse(202, MissionPendingJson(id, t, NotWaitedText(t.task_id()))); },
      [id, seconds](const pb::Task& t) {
        if (IsTerminal(t.status())) return JsonResponse(200, MissionResultJson(id, t));
        return JsonResponse(202, MissionPendingJson(id, t, StillText(t, seconds)));
      });
}

void BridgeRoutes::BrowserControl(const HttpRequest& req, const std::shared_ptr<Responder>& res,
                                  const Principal& who) {
  absl::StatusOr<json> body = JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  absl::StatusOr<BrowserRequest> r = BrowserRequestFromJson(*body);
  if (!r.ok()) return res->Reply(StatusResponse(r.status()));
  absl::StatusOr<bool> wait = WaitWanted(req);
  if (!wait.ok()) return res->Reply(StatusResponse(wait.status()));
  // Decided on the live workers, so the route works as soon as one offers `browser`
  // (issue 17) and a browser task is never left queued for a worker that may never come.
  absl::StatusOr<bool> offered = api_->OffersTaskType(who, "browser", r->target_device_id);
  if (!offered.ok()) return res->Reply(StatusResponse(offered.status()));
  if (!*offered) {
    return res->Reply(JsonResponse(
        503, BrowserRefusedJson(absl::StrCat("no worker can run browser tasks: ",
                                             NoWorkerOffers("browser", r->target_device_id),
                                             " (start a worker with --allow browser and Chromium installed)"))));
  }
  SubmitAndAwait(
      api_, deferrer_, who, BrowserTaskSpec(*r), *wait, kBrowserWaitSeconds, res,
      [req = *r](const pb::Task& t) { return JsonResponse(202, BrowserResultJson(req, t, NotWaitedText(t.task_id()))); },
      [req = *r](const pb::Task& t) {
        return JsonResponse(IsTerminal(t.status()) ? 200 : 202,
                            BrowserResultJson(req, t, StillText(t, kBrowserWaitSeconds)));
      });
}

}  // namespace rc::coordinator::http
