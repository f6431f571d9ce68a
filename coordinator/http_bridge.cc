#include "coordinator/http_bridge.h"

#include <httplib.h>

#include <algorithm>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/json_view.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"

namespace rc::coordinator {
namespace {

using nlohmann::json;

constexpr size_t kMinBodyLimit = 2 << 20;
constexpr int kMaxBatch = 1000;
constexpr double kMaxWaitSeconds = 300;

int HttpCode(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

// Replies echo what clients sent (paths, ids, query values), which need not be UTF-8: a
// strict dump would throw, and from the error handler that ends the process.
std::string JsonText(const Json& body) { return body.dump(-1, ' ', false, Json::error_handler_t::replace); }

void Reply(httplib::Response& res, int code, const Json& body) {
  res.status = code;
  res.set_content(JsonText(body), "application/json");
}

void Error(httplib::Response& res, const absl::Status& s) {
  Reply(res, HttpCode(s.code()), Json{{"error", std::string(s.message())}});
}

absl::StatusOr<json> Body(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("body: not valid JSON");
  return j;
}

// Submits every spec as one batch and waits for the answers (in order).
std::vector<absl::StatusOr<SubmitResult>> SubmitSync(Coordinator* core, std::vector<pb::TaskSpec> specs,
                                                     const std::string& owner) {
  absl::Notification done;
  std::vector<absl::StatusOr<SubmitResult>> results;
  core->SubmitBatch(
      std::move(specs),
      [&](std::vector<absl::StatusOr<SubmitResult>> r) {
        results = std::move(r);
        done.Notify();
      },
      owner);
  done.WaitForNotification();
  return results;
}

absl::StatusOr<SubmitResult> SubmitJson(Coordinator* core, const json& j, const std::string& owner) {
  absl::StatusOr<pb::TaskSpec> spec = TaskSpecFromJson(j);
  if (!spec.ok()) return spec.status();
  std::vector<pb::TaskSpec> one;
  one.push_back(std::move(*spec));
  return std::move(SubmitSync(core, std::move(one), owner)[0]);
}

// Collects watch snapshots until a terminal one (for the long poll).
class WaitSink final : public TaskSink {
 public:
  void OnTask(const pb::Task& t) override {
    absl::MutexLock lock(&mu_);
    if (t.revision() >= latest_.revision()) latest_ = t;
    if (IsTerminal(t.status())) done_ = true;
  }
  void Abort(absl::Status) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  pb::Task WaitUntil(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&done_), deadline);
    return latest_;
  }

 private:
  absl::Mutex mu_;
  pb::Task latest_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

HttpBridge::HttpBridge(Coordinator* core, std::unique_ptr<httplib::Server> server)
    : core_(core), server_(std::move(server)) {}

HttpBridge::~HttpBridge() { Stop(); }

void HttpBridge::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<HttpBridge>> HttpBridge::Start(const HttpBridgeOptions& options, Coordinator* core,
                                                              const TaskStore* store) {
  const std::string& host = options.host;
  const int port = options.port;
  const TlsFiles& tls = options.tls;
  std::unique_ptr<httplib::Server> server;
  if (tls.cert.empty()) {
    server = std::make_unique<httplib::Server>();
  } else {
    auto ssl = std::make_unique<httplib::SSLServer>(tls.cert.c_str(), tls.key.c_str(),
                                                    tls.ca.empty() ? nullptr : tls.ca.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("HTTP bridge: cannot load TLS files ", tls.cert, ", ", tls.key,
                                                     tls.ca.empty() ? "" : absl::StrCat(", ", tls.ca)));
    }
    server = std::move(ssl);
  }
  std::unique_ptr<HttpBridge> b(new HttpBridge(core, std::move(server)));
  b->store_ = store;
  b->tokens_ = options.tokens != nullptr ? options.tokens : &b->no_tokens_;
  b->client_certified_ = !tls.cert.empty() && !tls.ca.empty();
  // A task of max_payload_bytes, with its metadata and the JSON around it.
  b->max_body_ = std::max(kMinBodyLimit, options.max_payload_bytes + (256 << 10));
  b->Routes();
  b->port_ = port == 0 ? b->server_->bind_to_any_port(host) : (b->server_->bind_to_port(host, port) ? port : -1);
  if (b->port_ <= 0) return absl::UnavailableError(absl::StrCat("HTTP bridge cannot listen on ", host, ":", port));
  httplib::Server* listening = b->server_.get();
  b->thread_ = std::thread([listening] { listening->listen_after_bind(); });
  return b;
}

absl::StatusOr<Principal> HttpBridge::Caller(const httplib::Request& req) const {
  // Under mTLS the handshake already verified every peer's client certificate.
  return AuthenticateClient(*tokens_, req.get_header_value("Authorization"), req.remote_addr, client_certified_);
}

void HttpBridge::Routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(max_body_);
  // Errors httplib answers itself (404 route, 413 body too large, ...) also as JSON.
  s.set_error_handler([max_body = max_body_](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string what = res.status == 404
                           ? absl::StrCat("no such endpoint: ", req.method, " ", req.path)
                       : res.status == 413
                           ? absl::StrCat("body larger than ", max_body,
                                          " bytes (the limit follows max_payload_bytes)")
                           : absl::StrCat("HTTP ", res.status);
    res.set_content(JsonText(Json{{"error", what}}), "application/json");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Reply(res, 500, Json{{"error", "internal error"}});
  });
  // Authenticates the request, checks `action` (nullopt: the handler checks the task's
  // owner itself), then runs `handler` with the caller.
  auto authed = [this](std::optional<Action> action, auto handler) {
    return [this, action, handler](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<Principal> who = Caller(req);
      if (!who.ok()) {
        res.set_header("WWW-Authenticate", "Bearer");
        return Error(res, who.status());
      }
      if (action.has_value()) {
        if (absl::Status allowed = Authorize(*who, *action); !allowed.ok()) return Error(res, allowed);
      }
      handler(req, res, *who);
    };
  };

  s.Post("/tasks", authed(Action::kSubmit, [this](const httplib::Request& req, httplib::Response& res,
                                                   const Principal& who) {
    absl::StatusOr<json> body = Body(req);
    if (!body.ok()) return Error(res, body.status());
    absl::StatusOr<SubmitResult> r = SubmitJson(core_, *body, who.name);
    if (!r.ok()) return Error(res, r.status());
    Reply(res, r->existing ? 200 : 201, Json{{"task_id", r->task_id}, {"status", StatusName(r->status)}});
  }));

  s.Post("/tasks/batch", authed(Action::kSubmit, [this](const httplib::Request& req, httplib::Response& res,
                                                         const Principal& who) {
    absl::StatusOr<json> body = Body(req);
    if (!body.ok()) return Error(res, body.status());
    if (!body->is_object() || !body->contains("tasks") || !(*body)["tasks"].is_array()) {
      return Error(res, absl::InvalidArgumentError("tasks: required, an array of tasks"));
    }
    const json& tasks = (*body)["tasks"];
    if (tasks.size() > kMaxBatch) {
      return Error(res, absl::InvalidArgumentError(absl::StrCat("tasks: at most ", kMaxBatch, " per batch")));
    }
    // Parse all first: the valid ones go to the core as one batch (one commit).
    std::vector<absl::Status> refused(tasks.size());
    std::vector<pb::TaskSpec> specs;
    for (size_t i = 0; i < tasks.size(); ++i) {
      absl::StatusOr<pb::TaskSpec> spec = TaskSpecFromJson(tasks[i]);
      if (spec.ok()) {
        specs.push_back(std::move(*spec));
      } else {
        refused[i] = spec.status();
      }
    }
    std::vector<absl::StatusOr<SubmitResult>> accepted = SubmitSync(core_, std::move(specs), who.name);
    Json out = {{"tasks", Json::array()}};
    for (size_t i = 0, next = 0; i < tasks.size(); ++i) {
      absl::StatusOr<SubmitResult> r = refused[i].ok() ? std::move(accepted[next++]) : refused[i];
      if (r.ok()) {
        out["tasks"].push_back({{"task_id", r->task_id}, {"status", StatusName(r->status)}});
      } else {
        out["tasks"].push_back({{"error", absl::StrCat("tasks[", i, "].", r.status().message())}});
      }
    }
    Reply(res, 201, out);
  }));

  s.Get(R"(/tasks/([^/]+))", authed(std::nullopt, [this](const httplib::Request& req, httplib::Response& res,
                                                          const Principal& who) {
    absl::StatusOr<pb::Task> t = core_->GetTask(req.matches[1]);
    if (!t.ok()) return Error(res, t.status());
    if (absl::Status allowed = Authorize(who, Action::kReadTask, t->owner()); !allowed.ok()) return Error(res, allowed);
    Reply(res, 200, TaskToJson(*t));
  }));

  s.Get(R"(/tasks/([^/]+)/wait)", authed(std::nullopt, [this](const httplib::Request& req, httplib::Response& res,
                                                               const Principal& who) {
    double timeout = 30;
    if (req.has_param("timeout") &&
        (!absl::SimpleAtod(req.get_param_value("timeout"), &timeout) || !(timeout > 0) || timeout > kMaxWaitSeconds)) {
      return Error(res, absl::InvalidArgumentError(
                            absl::StrCat("timeout: expected seconds in (0, ", kMaxWaitSeconds, "]")));
    }
    auto sink = std::make_shared<WaitSink>();
    absl::StatusOr<uint64_t> watch = core_->Watch(req.matches[1], sink, who);  // checks the owner
    if (!watch.ok()) return Error(res, watch.status());
    pb::Task t = sink->WaitUntil(absl::Now() + absl::Seconds(timeout));
    core_->Unwatch(req.matches[1], *watch);
    Reply(res, 200, TaskToJson(t));
  }));

  s.Delete(R"(/tasks/([^/]+))", authed(std::nullopt, [this](const httplib::Request& req, httplib::Response& res,
                                                             const Principal& who) {
    absl::Notification done;
    absl::StatusOr<pb::CancelTaskResponse> r = absl::InternalError("no answer");
    core_->Cancel(
        req.matches[1],
        [&](absl::StatusOr<pb::CancelTaskResponse> c) {
          r = std::move(c);
          done.Notify();
        },
        who);
    done.WaitForNotification();
    if (!r.ok()) return Error(res, r.status());
    Reply(res, 200, Json{{"task_id", r->task_id()}, {"cancelled", r->cancelled()}});
  }));

  s.Get("/tasks", authed(Action::kListTasks, [this](const httplib::Request& req, httplib::Response& res,
                                                     const Principal& who) {
    TaskFilter f;
    if (who.role == Role::kSubmit) f.owner = who.name;  // its own tasks only
    if (req.has_param("status")) {
      absl::StatusOr<pb::TaskStatus> st = ParseStatus(req.get_param_value("status"));
      if (!st.ok()) return Error(res, absl::InvalidArgumentError(absl::StrCat("status: ", st.status().message())));
      f.status = *st;
    }
    if (req.has_param("type")) f.task_type = req.get_param_value("type");
    if (req.has_param("limit") && !absl::SimpleAtoi(req.get_param_value("limit"), &f.limit)) {
      return Error(res, absl::InvalidArgumentError("limit: expected an integer"));
    }
    absl::StatusOr<std::vector<pb::Task>> tasks = core_->ListTasks(f);
    if (!tasks.ok()) return Error(res, tasks.status());
    Json out = {{"tasks", Json::array()}};
    for (const pb::Task& t : *tasks) out["tasks"].push_back(TaskToJson(t));
    Reply(res, 200, out);
  }));

  s.Get("/workers", authed(Action::kReadCluster, [this](const httplib::Request&, httplib::Response& res,
                                                        const Principal&) {
    Json out = {{"workers", Json::array()}};
    for (const pb::Worker& w : core_->ListWorkers("")) out["workers"].push_back(WorkerToJson(w));
    Reply(res, 200, out);
  }));
  s.Post(R"(/workers/([^/]+)/(drain|undrain))", authed(Action::kDrain, [this](const httplib::Request& req,
                                                                           httplib::Response& res, const Principal&) {
    absl::StatusOr<pb::Worker> w = core_->DrainWorker(req.matches[1], req.matches[2] == "drain");
    if (!w.ok()) return Error(res, w.status());
    Reply(res, 200, WorkerToJson(*w));
  }));
  s.Get("/stats", authed(Action::kReadCluster, [this](const httplib::Request&, httplib::Response& res,
                                                      const Principal&) {
    Reply(res, 200, StatsToJson(core_->Stats()));
  }));
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { Reply(res, 200, Json{{"status", "ok"}}); });
  s.Get("/metrics", authed(Action::kReadCluster, [this](const httplib::Request&, httplib::Response& res,
                                                        const Principal&) {
    std::string text = PrometheusText(core_->Stats(), core_->ListWorkers(""));
    absl::StrAppend(&text, "# HELP retire_cluster_tasks_by_type Tasks known to the coordinator, by type and status.\n",
                    "# TYPE retire_cluster_tasks_by_type gauge\n");
    for (const auto& [type, by_status] : core_->CountsByType()) {
      for (const auto& [status, n] : by_status) {
        absl::StrAppend(&text, "retire_cluster_tasks_by_type{type=\"", type, "\",status=\"", status, "\"} ", n, "\n");
      }
    }
    absl::StrAppend(&text,
                    core_->dispatch_latency().Render("retire_cluster_dispatch_latency_seconds",
                                                     "Submit to first assignment."),
                    core_->end_to_end_latency().Render("retire_cluster_end_to_end_latency_seconds",
                                                       "Submit to terminal state."));
    if (store_ != nullptr && store_->commit_latency() != nullptr) {
      absl::StrAppend(&text, store_->commit_latency()->Render("retire_cluster_store_commit_latency_seconds",
                                                              "One group commit of the task store."));
    }
    res.set_content(text, "text/plain; version=0.0.4");
  }));
}

std::string PrometheusText(const pb::Stats& s, const std::vector<pb::Worker>& workers) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  };
  metric("retire_cluster_tasks", "gauge", "Tasks known to the coordinator, by status.");
  for (const auto& [status, n] : s.tasks()) absl::StrAppend(&out, "retire_cluster_tasks{status=\"", status, "\"} ", n, "\n");
  metric("retire_cluster_queue_depth", "gauge", "Queued tasks, by priority.");
  for (const auto& [p, n] : s.queued_by_priority()) {
    absl::StrAppend(&out, "retire_cluster_queue_depth{priority=\"", p, "\"} ", n, "\n");
  }
  metric("retire_cluster_tasks_scheduled_total", "counter", "Attempts placed on workers since start.");
  absl::StrAppend(&out, "retire_cluster_tasks_scheduled_total ", s.tasks_scheduled(), "\n");
  metric("retire_cluster_workers_online", "gauge", "Workers connected and accepting tasks.");
  absl::StrAppend(&out, "retire_cluster_workers_online ", s.online_devices(), "\n");
  metric("retire_cluster_workers_total", "gauge", "Workers ever seen.");
  absl::StrAppend(&out, "retire_cluster_workers_total ", s.total_devices(), "\n");
  metric("retire_cluster_slots", "gauge", "Task slots of online workers.");
  absl::StrAppend(&out, "retire_cluster_slots ", s.total_slots(), "\n");
  metric("retire_cluster_slots_busy", "gauge", "Slots holding an attempt.");
  absl::StrAppend(&out, "retire_cluster_slots_busy ", s.busy_slots(), "\n");
  metric("retire_cluster_worker_running", "gauge", "Attempts held by each worker.");
  for (const pb::Worker& w : workers) {
    absl::StrAppend(&out, "retire_cluster_worker_running{device_id=\"", w.capabilities().device_id(), "\",status=\"",
                    WorkerStatusName(w.status()), "\"} ", w.running(), "\n");
  }
  metric("retire_cluster_uptime_seconds", "gauge", "Seconds since the coordinator started.");
  absl::StrAppend(&out, "retire_cluster_uptime_seconds ", s.uptime_seconds(), "\n");
  return out;
}

}  // namespace rc::coordinator
