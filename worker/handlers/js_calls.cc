#include "worker/handlers/js_calls.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/task_names.h"

namespace rc::worker {
namespace {

using json = nlohmann::json;

constexpr char kOptions[] = "timeout_seconds, max_retries, priority, memory_mb";

absl::Status Bad(const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string Short(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 64); }

// An integer-valued JSON number.
bool AsInteger(const json& j, int64_t* out) {
  if (j.is_number_integer()) {
    *out = j.get<int64_t>();
    return true;
  }
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<pb::TaskSpec> ChildSpec(const json& call) {
  pb::TaskSpec spec;
  const json target = call.contains("target") ? call["target"] : json(nullptr);
  const json input = call.contains("input") ? call["input"] : json(nullptr);
  json payload;
  if (target.is_string()) {
    if (target.get<std::string>().empty()) return Bad("target", "empty (a published task's name)");
    spec.set_task_type("js");
    payload = {{"name", target}};
    if (!input.is_null()) payload["input"] = input;
  } else if (target.is_object()) {
    auto type = target.find("task_type");
    if (type == target.end() || !type->is_string() || type->get<std::string>().empty()) {
      return Bad("target.task_type", "required, a string");
    }
    spec.set_task_type(type->get<std::string>());
    auto p = target.find("payload");
    if (p == target.end() || p->is_null()) {
      payload = json::object();
    } else if (p->is_object()) {
      payload = *p;
    } else {
      return Bad("target.payload", "expected an object");
    }
    // A js child's input is its payload's; other types take their payload as given (the
    // host sends {} for an input left out).
    const bool no_input = input.is_null() || (input.is_object() && input.empty());
    if (spec.task_type() == "js") {
      if (!input.is_null() && !payload.contains("input")) payload["input"] = input;
    } else if (!no_input) {
      return Bad("input", absl::StrCat("only js children take an input; put it in target.payload for ", spec.task_type()));
    }
  } else {
    return Bad("target", absl::StrCat("expected a published task's name or {task_type, payload}, got ", Short(target)));
  }
  const json options = call.contains("options") ? call["options"] : json(nullptr);
  if (!options.is_null() && !options.is_object()) return Bad("options", "expected an object");
  for (auto it = options.begin(); options.is_object() && it != options.end(); ++it) {
    const std::string field = absl::StrCat("options.", it.key());
    const json& v = it.value();
    if (v.is_null()) continue;
    if (it.key() == "timeout_seconds") {
      if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>())) {
        return Bad(field, absl::StrCat("expected a number of seconds > 0, got ", Short(v)));
      }
      spec.mutable_requirements()->set_timeout_seconds(v.get<double>());
    } else if (it.key() == "max_retries") {
      int64_t n = 0;
      if (!AsInteger(v, &n) || n < 0 || n > 100) return Bad(field, absl::StrCat("expected 0..100, got ", Short(v)));
      spec.mutable_requirements()->set_max_retries(static_cast<int32_t>(n));
    } else if (it.key() == "priority") {
      if (!v.is_string()) return Bad(field, absl::StrCat("expected low, normal, high or urgent, got ", Short(v)));
      absl::StatusOr<pb::Priority> p = ParsePriority(v.get<std::string>());
      if (!p.ok()) return Bad(field, std::string(p.status().message()));
      spec.set_priority(*p);
    } else if (it.key() == "memory_mb") {
      int64_t mb = 0;
      if (!AsInteger(v, &mb) || mb < 1 || mb > 2048) return Bad(field, absl::StrCat("expected 1..2048, got ", Short(v)));
      if (spec.task_type() != "js") return Bad(field, absl::StrCat("only for js children, not ", spec.task_type()));
      payload["memory_mb"] = mb;
    } else {
      return Bad(field, absl::StrCat("unknown option (", kOptions, ")"));
    }
  }
  spec.set_payload(payload.dump(-1, ' ', false, json::error_handler_t::replace));
  return spec;
}

json ChildOutcome(const std::string& id, int64_t call, const pb::Task& task) {
  const std::string type = task.spec().task_type();
  if (task.status() == pb::TASK_STATUS_SUCCESS) {
    json result = task.result().empty() ? json(nullptr)
                                        : json::parse(task.result(), nullptr, /*allow_exceptions=*/false);
    if (result.is_discarded()) {
      return CallRefused(id, call, absl::StrCat("child task ", task.task_id(), " (", type, ") returned a result that is not JSON"));
    }
    return {{"op", "call_result"}, {"id", id}, {"call", call}, {"ok", true}, {"result", std::move(result)}};
  }
  std::string error = absl::StrCat("child task ", task.task_id(), " (", type, ") ended ", StatusName(task.status()));
  if (!task.error_message().empty()) absl::StrAppend(&error, ": ", task.error_message());
  return {{"op", "call_result"}, {"id", id},         {"call", call},
          {"ok", false},         {"error", error},   {"task_id", task.task_id()},
          {"status", std::string(StatusName(task.status()))}};
}

json CallRefused(const std::string& id, int64_t call, const std::string& why) {
  return {{"op", "call_result"}, {"id", id}, {"call", call}, {"ok", false}, {"error", why}};
}

JsCalls::JsCalls(std::string id, Connect connect, std::function<void()> wake)
    : id_(std::move(id)), connect_(std::move(connect)), wake_(std::move(wake)) {}

JsCalls::~JsCalls() { client_.reset(); }

client::Client* JsCalls::ClientFor(std::string* why) {
  if (!connect_tried_) {
    connect_tried_ = true;
    absl::StatusOr<std::string> target = connect_ ? connect_() : absl::StatusOr<std::string>("");
    if (!target.ok()) {
      no_target_ = absl::StrCat("this worker cannot submit child tasks: ", target.status().message());
    } else if (target->empty()) {
      no_target_ = "this worker cannot submit child tasks (no task socket)";
    } else {
      target_ = *target;
    }
  }
  if (target_.empty()) {
    *why = no_target_;
    return nullptr;
  }
  if (client_ == nullptr) {
    client::ClientOptions options;
    options.target = target_;  // the gateway adds the task token
    // A submit waits for the coordinator's store commit, not for the child.
    options.rpc_timeout = absl::Seconds(30);
    client_ = std::make_unique<client::Client>(options);
  }
  return client_.get();
}

void JsCalls::Start(const json& call) {
  int64_t k = 0;
  if (!call.contains("call") || !AsInteger(call["call"], &k)) return;  // nothing to answer to
  absl::StatusOr<pb::TaskSpec> spec = ChildSpec(call);
  if (!spec.ok()) {
    answered_.push_back(CallRefused(id_, k, std::string(spec.status().message())));
    return;
  }
  if (calls_.contains(k)) {
    answered_.push_back(CallRefused(id_, k, absl::StrCat("call ", k, " is running already")));
    return;
  }
  std::string why;
  client::Client* client = ClientFor(&why);
  if (client == nullptr) {
    answered_.push_back(CallRefused(id_, k, why));
    return;
  }
  calls_[k] = Call{spec->task_type(), ""};
  client->SubmitAsync(std::move(*spec), [reports = reports_, wake = wake_, k](absl::StatusOr<pb::SubmitResponse> r) {
    {
      absl::MutexLock lock(&reports->mu);
      Progress p;
      p.call = k;
      p.submitted = true;
      p.submit = std::move(r);
      reports->progress.push_back(std::move(p));
    }
    wake();
  });
}

std::vector<json> JsCalls::Drain() {
  std::vector<json> out = std::move(answered_);
  answered_.clear();
  std::vector<Progress> progress;
  {
    absl::MutexLock lock(&reports_->mu);
    progress.swap(reports_->progress);
  }
  for (Progress& p : progress) {
    auto it = calls_.find(p.call);
    if (it == calls_.end()) continue;
    if (p.submitted && !p.submit.ok()) {
      out.push_back(CallRefused(id_, p.call, std::string(p.submit.status().message())));
      calls_.erase(it);
    } else if (p.submitted) {
      it->second.task_id = p.submit->task_id();
      client_->WaitAsync(p.submit->task_id(), [reports = reports_, wake = wake_, k = p.call](absl::StatusOr<pb::Task> t) {
        {
          absl::MutexLock lock(&reports->mu);
          Progress done;
          done.call = k;
          done.task = std::move(t);
          reports->progress.push_back(std::move(done));
        }
        wake();
      });
    } else if (!p.task.ok()) {
      json r = CallRefused(id_, p.call, absl::StrCat("waiting for child task ", it->second.task_id, " (",
                                                     it->second.task_type, "): ", p.task.status().message()));
      r["task_id"] = it->second.task_id;
      out.push_back(std::move(r));
      calls_.erase(it);
    } else {
      if (p.task->spec().task_type().empty()) p.task->mutable_spec()->set_task_type(it->second.task_type);
      out.push_back(ChildOutcome(id_, p.call, *p.task));
      calls_.erase(it);
    }
  }
  // Closing the Client ends its WaitTasks stream: the attempt no longer counts as waiting.
  if (calls_.empty()) client_.reset();
  return out;
}

}  // namespace rc::worker
