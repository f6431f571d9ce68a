#include "common/js_task_json.h"


namespace rc {

namespace pb = ::retire_cluster::v1;

Json JsTaskToJson(const pb::JsTask& t) {
  Json params = Json::array();
  for (const pb::JsTaskParam& p : t.params()) {
    params.push_back(
        {{"name", p.name()}, {"type", p.type()}, {"description", p.description()}, {"optional", p.optional()}});
  }
  Json j = {{"name", t.name()},
            {"version", t.version()},
            {"versions", t.versions()},
            {"sha256", t.sha256()},
            {"description", t.description()},
            {"params", params},
            {"returns", t.returns()},
            {"owner", t.owner()},
            {"created_at_ms", t.created_at_ms()},
            {"code_bytes", t.code_bytes()}};
  if (!t.code().empty()) j["code"] = t.code();
  return j;
}

Json PublishJsTaskJson(const pb::PublishJsTaskResponse& r) {
  return Json{{"task", JsTaskToJson(r.task())}, {"unchanged", r.unchanged()}};
}

Json JsTaskListJson(const std::vector<pb::JsTask>& tasks) {
  Json out = {{"tasks", Json::array()}};
  for (const pb::JsTask& t : tasks) out["tasks"].push_back(JsTaskToJson(t));
  return out;
}

absl::StatusOr<std::string> JsRunPayload(absl::string_view name, int version, const nlohmann::json& input,
                                         absl::string_view input_field, const nlohmann::json& extra) {
  if (absl::Status depth = CheckJsonDepth(input, input_field); !depth.ok()) return depth;
  nlohmann::json payload = extra.is_object() ? extra : nlohmann::json::object();
  payload["name"] = std::string(name);
  if (version > 0) {
    payload["version"] = version;
  } else {
    payload.erase("version");
  }
  payload["input"] = input;
  // A name from a URL path need not be UTF-8: a strict dump would throw (the coordinator
  // then refuses the name, naming payload.name).
  return payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace rc
