#include "coordinator/http/routes.h"

#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"
#include "coordinator/http/completion_route.h"
#include "coordinator/http/js_task_routes.h"
#include "coordinator/http/prometheus_text.h"

namespace rc::coordinator::http {
namespace {

using nlohmann::json;

int HttpCode(absl::StatusCode c) {
  switch (c) {
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kFailedPrecondition: return 409;  // e.g. completing a task that is not running
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

Json SubmitJson(const SubmitResult& r) { return Json{{"task_id", r.task_id}, {"status", StatusName(r.status)}}; }

// One long poll: a sink that answers once through its TaskReply, at the terminal
// snapshot, the timeout or the core's shutdown (the task as it is then), or not at all
// when the client disconnected, and unwatches on every path. The core calls OnTask/Abort after releasing its lock but a sink may not call
// back into it, so the unwatch and the current-snapshot read hop through the Deferrer.
class LongPoll final : public TaskSink, public std::enable_shared_from_this<LongPoll> {
 public:
  LongPoll(ClientApi* api, Deferrer* deferrer, Principal who, std::string task_id,
           std::shared_ptr<Responder> responder, TaskReply reply)
      : api_(api),
        deferrer_(deferrer),
        who_(std::move(who)),
        task_id_(std::move(task_id)),
        responder_(std::move(responder)),
        reply_(std::move(reply)) {}

  bool TerminalOnly() const override { return true; }
  void OnTask(pb::Task t) override {
    if (IsTerminal(t.status())) Finish(Outcome::kTerminal, &t);
  }
  void Abort(absl::Status) override { Finish(Outcome::kCurrent, nullptr); }

  enum class Outcome { kTerminal, kCurrent, kGone };
  void Finish(Outcome outcome, const pb::Task* terminal) {
    std::function<void()> cancel_timer;
    std::optional<uint64_t> watch;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      done_ = true;
      cancel_timer = std::move(cancel_timer_);
      watch = watch_;
    }
    if (cancel_timer) cancel_timer();
    if (outcome == Outcome::kTerminal) {
      responder_->Reply(reply_(*terminal));
    } else if (outcome == Outcome::kCurrent) {
      deferrer_->Post([self = shared_from_this()] { self->ReplyCurrent(); });
    }
    if (watch.has_value()) {
      deferrer_->Post([api = api_, id = task_id_, w = *watch] { api->Unwatch(id, w); });
    }
  }
  // Called once Watch returned (outside the core): unwatches at once if already done.
  void Watching(uint64_t watch) {
    {
      absl::MutexLock lock(&mu_);
      watch_ = watch;
      if (!done_) return;
    }
    api_->Unwatch(task_id_, watch);
  }
  void SetTimer(std::function<void()> cancel) {
    {
      absl::MutexLock lock(&mu_);
      if (!done_) {
        cancel_timer_ = std::move(cancel);
        return;
      }
    }
    cancel();
  }

 private:
  // The task as it is now (the timeout's answer; it may have ended meanwhile).
  void ReplyCurrent() {
    absl::StatusOr<pb::Task> t = api_->GetTask(who_, task_id_);
    responder_->Reply(t.ok() ? reply_(*t) : StatusResponse(t.status()));
  }

  ClientApi* const api_;
  Deferrer* const deferrer_;
  const Principal who_;
  const std::string task_id_;
  const std::shared_ptr<Responder> responder_;
  const TaskReply reply_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<uint64_t> watch_ ABSL_GUARDED_BY(mu_);
  std::function<void()> cancel_timer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

HttpResponse StatusResponse(const absl::Status& s) { return ErrorResponse(HttpCode(s.code()), std::string(s.message())); }

absl::StatusOr<json> JsonBody(const HttpRequest& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("body: not valid JSON");
  return j;
}

void AwaitTask(ClientApi* api, Deferrer* deferrer, const Principal& who, const std::string& task_id, double seconds,
               std::shared_ptr<Responder> responder, TaskReply reply) {
  auto poll = std::make_shared<LongPoll>(api, deferrer, who, task_id, responder, std::move(reply));
  absl::StatusOr<uint64_t> watch = api->Watch(who, task_id, poll);
  if (!watch.ok()) return responder->Reply(StatusResponse(watch.status()));
  poll->Watching(*watch);
  std::weak_ptr<LongPoll> weak = poll;
  responder->OnGone([weak] {
    if (auto p = weak.lock()) p->Finish(LongPoll::Outcome::kGone, nullptr);
  });
  poll->SetTimer(deferrer->After(seconds, [weak] {
    if (auto p = weak.lock()) p->Finish(LongPoll::Outcome::kCurrent, nullptr);
  }));
}

std::string JsonText(const Json& body) { return body.dump(-1, ' ', false, Json::error_handler_t::replace); }

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = JsonText(body);
  return r;
}

HttpResponse ErrorResponse(int status, const std::string& message) {
  return JsonResponse(status, Json{{"error", message}});
}

BridgeRoutes::BridgeRoutes(ClientApi* api, Deferrer* deferrer, RoutesOptions options)
    : api_(api), deferrer_(deferrer), options_(std::move(options)) {}

void BridgeRoutes::Handle(const HttpRequest& request, std::shared_ptr<Responder> responder) {
  try {
    Route(request, responder);
  } catch (const std::exception&) {
    responder->Reply(ErrorResponse(500, "internal error"));
  }
}

bool IsKnownMethod(absl::string_view method) {
  for (absl::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) return true;
  }
  return false;
}

void BridgeRoutes::Route(const HttpRequest& req, const std::shared_ptr<Responder>& res) {
  const std::vector<absl::string_view> p = absl::StrSplit(req.path, '/');
  // p[0] is the empty text before the leading '/'.
  auto is = [&](std::initializer_list<absl::string_view> want) {
    if (p.size() != want.size() + 1 || !p[0].empty()) return false;
    size_t i = 1;
    for (absl::string_view w : want) {
      if (w == "*" ? p[i].empty() : p[i] != w) return false;
      ++i;
    }
    return true;
  };
  const std::string& m = req.method;
  if (m == "GET" && is({"healthz"})) return res->Reply(JsonResponse(200, Json{{"status", "ok"}}));

  // Every other route is one client API operation; the API admits the caller to it.
  enum class R { kSubmit, kBatch, kGet, kWait, kCancel, kList, kWorkers, kDrain, kStats, kMetrics, kMission, kBrowser,
                 kJsTask, kComplete };
  R route;
  ClientOp op;
  const std::optional<JsTaskMatch> js = MatchJsTaskRoute(m, p);  // /js-tasks...: js_task_routes.h
  if (js.has_value()) {
    route = R::kJsTask, op = js->op;
  } else if (m == "POST" && is({"tasks"})) {
    route = R::kSubmit, op = ClientOp::kSubmit;
  } else if (m == "POST" && is({"v1", "missions", "execute"})) {
    route = R::kMission, op = ClientOp::kSubmit;
  } else if (m == "POST" && is({"v1", "browser", "control"})) {
    route = R::kBrowser, op = ClientOp::kSubmit;
  } else if (m == "POST" && is({"tasks", "batch"})) {
    route = R::kBatch, op = ClientOp::kSubmit;
  } else if (m == "GET" && is({"tasks", "*"})) {
    route = R::kGet, op = ClientOp::kGetTask;
  } else if (m == "POST" && is({"tasks", "*", "complete"})) {
    route = R::kComplete, op = ClientOp::kCompleteTask;
  } else if (m == "GET" && is({"tasks", "*", "wait"})) {
    route = R::kWait, op = ClientOp::kWatchTask;
  } else if (m == "DELETE" && is({"tasks", "*"})) {
    route = R::kCancel, op = ClientOp::kCancelTask;
  } else if (m == "GET" && is({"tasks"})) {
    route = R::kList, op = ClientOp::kListTasks;
  } else if (m == "GET" && is({"workers"})) {
    route = R::kWorkers, op = ClientOp::kListWorkers;
  } else if (m == "POST" && (is({"workers", "*", "drain"}) || is({"workers", "*", "undrain"}))) {
    route = R::kDrain, op = ClientOp::kDrainWorker;
  } else if (m == "GET" && is({"stats"})) {
    route = R::kStats, op = ClientOp::kGetStats;
  } else if (m == "GET" && is({"metrics"})) {
    route = R::kMetrics, op = ClientOp::kMetrics;
  } else if (!IsKnownMethod(m)) {
    // As the cpp-httplib bridge answered: a method no route could ever take is 400.
    return res->Reply(ErrorResponse(400, absl::StrCat("unknown HTTP method \"", absl::CEscape(m.substr(0, 32)),
                                                      "\": use GET, POST or DELETE")));
  } else {
    return res->Reply(ErrorResponse(404, absl::StrCat("no such endpoint: ", m, " ", req.path)));
  }

  absl::StatusOr<Principal> who =
      api_->Admit(op, req.authorization, [&] { return Peer{req.peer, options_.client_certified}; });
  if (!who.ok()) {
    HttpResponse r = StatusResponse(who.status());
    if (who.status().code() == absl::StatusCode::kUnauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return res->Reply(std::move(r));
  }
  const std::string id = p.size() > 2 ? std::string(p[2]) : "";
  switch (route) {
    case R::kSubmit: return SubmitOne(req, res, *who);
    case R::kBatch: return SubmitBatch(req, res, *who);
    case R::kMission: return ExecuteMission(req, res, *who);
    case R::kBrowser: return BrowserControl(req, res, *who);
    case R::kJsTask: return HandleJsTaskRoute(*js, api_, deferrer_, req, res, *who);
    case R::kGet: {
      absl::StatusOr<pb::Task> t = api_->GetTask(*who, id);
      return res->Reply(t.ok() ? JsonResponse(200, TaskToJson(*t)) : StatusResponse(t.status()));
    }
    case R::kWait: return WaitFor(id, req, res, *who);
    case R::kComplete: return CompleteTaskRoute(api_, id, req, res, *who);
    case R::kCancel:
      return api_->Cancel(*who, id, [res](absl::StatusOr<pb::CancelTaskResponse> c) {
        res->Reply(c.ok() ? JsonResponse(200, Json{{"task_id", c->task_id()}, {"cancelled", c->cancelled()}})
                          : StatusResponse(c.status()));
      });
    case R::kList: return ListTasks(req, res, *who);
    case R::kWorkers: {
      const std::string* device = req.Param("device_id");
      absl::StatusOr<std::vector<pb::Worker>> workers = api_->ListWorkers(*who, device != nullptr ? *device : "");
      if (!workers.ok()) return res->Reply(StatusResponse(workers.status()));
      Json out = {{"workers", Json::array()}};
      for (const pb::Worker& w : *workers) out["workers"].push_back(WorkerToJson(w));
      return res->Reply(JsonResponse(200, out));
    }
    case R::kDrain: {
      // Any body (or none) is ignored: `curl -X POST .../drain` sends none.
      absl::StatusOr<pb::Worker> w = api_->DrainWorker(*who, id, p[3] == "drain");
      return res->Reply(w.ok() ? JsonResponse(200, WorkerToJson(*w)) : StatusResponse(w.status()));
    }
    case R::kStats: {
      absl::StatusOr<pb::Stats> stats = api_->Stats(*who);
      return res->Reply(stats.ok() ? JsonResponse(200, StatsToJson(*stats)) : StatusResponse(stats.status()));
    }
    case R::kMetrics: {
      absl::StatusOr<ClusterMetrics> metrics = api_->Metrics(*who);
      if (!metrics.ok()) return res->Reply(StatusResponse(metrics.status()));
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = Metrics(*metrics);
      return res->Reply(std::move(r));
    }
  }
}

void BridgeRoutes::SubmitOne(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who) {
  absl::StatusOr<json> body = JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  absl::StatusOr<pb::TaskSpec> spec = TaskSpecFromJson(*body);
  if (!spec.ok()) return res->Reply(StatusResponse(spec.status()));
  api_->Submit(who, *std::move(spec), [res](absl::StatusOr<SubmitResult> r) {
    res->Reply(r.ok() ? JsonResponse(r->existing ? 200 : 201, SubmitJson(*r)) : StatusResponse(r.status()));
  });
}

void BridgeRoutes::SubmitBatch(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who) {
  absl::StatusOr<json> body = JsonBody(req);
  if (!body.ok()) return res->Reply(StatusResponse(body.status()));
  if (!body->is_object() || !body->contains("tasks") || !(*body)["tasks"].is_array()) {
    return res->Reply(ErrorResponse(400, "tasks: required, an array of tasks"));
  }
  const json& tasks = (*body)["tasks"];
  // Refused before its entries are parsed; the request body's size bounds the bytes.
  if (absl::Status size = ClientApi::CheckBatchSize("tasks", tasks.size()); !size.ok()) {
    return res->Reply(StatusResponse(size));
  }
  std::vector<absl::StatusOr<pb::TaskSpec>> specs;
  specs.reserve(tasks.size());
  for (const json& t : tasks) specs.push_back(TaskSpecFromJson(t));
  api_->SubmitBatch(who, "tasks", std::move(specs),
                    [res](absl::StatusOr<std::vector<absl::StatusOr<SubmitResult>>> results) {
                      if (!results.ok()) return res->Reply(StatusResponse(results.status()));
                      Json out = {{"tasks", Json::array()}};
                      for (const absl::StatusOr<SubmitResult>& r : *results) {
                        out["tasks"].push_back(r.ok() ? SubmitJson(*r) : Json{{"error", std::string(r.status().message())}});
                      }
                      res->Reply(JsonResponse(201, out));
                    });
}

void BridgeRoutes::WaitFor(const std::string& id, const HttpRequest& req, const std::shared_ptr<Responder>& res,
                           const Principal& who) {
  std::optional<double> requested;
  if (const std::string* t = req.Param("timeout"); t != nullptr) {
    double seconds;
    requested = absl::SimpleAtod(*t, &seconds) ? seconds : std::nan("");  // not a number: refused as such
  }
  absl::StatusOr<double> timeout = ClientApi::WaitSeconds(requested);
  if (!timeout.ok()) return res->Reply(StatusResponse(timeout.status()));
  // 200 with the task whether it ended or not (the caller reads its status).
  AwaitTask(api_, deferrer_, who, id, *timeout, res, [](const pb::Task& t) { return JsonResponse(200, TaskToJson(t)); });
}

void BridgeRoutes::ListTasks(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who) {
  TaskListQuery q;
  if (const std::string* s = req.Param("status"); s != nullptr) {
    absl::StatusOr<pb::TaskStatus> st = ParseStatus(*s);
    if (!st.ok()) return res->Reply(ErrorResponse(400, absl::StrCat("status: ", st.status().message())));
    q.status = *st;
  }
  if (const std::string* type = req.Param("type"); type != nullptr) q.task_type = *type;
  if (const std::string* worker = req.Param("worker_device_id"); worker != nullptr) q.worker_device_id = *worker;
  if (const std::string* parent = req.Param("parent"); parent != nullptr) {
    if (parent->empty()) return res->Reply(ErrorResponse(400, "parent: expected a task id"));
    q.parent_task_id = *parent;
  }
  if (const std::string* limit = req.Param("limit"); limit != nullptr) {
    int n;
    if (!absl::SimpleAtoi(*limit, &n)) return res->Reply(ErrorResponse(400, "limit: expected an integer"));
    q.limit = n;
  }
  absl::StatusOr<std::vector<pb::Task>> tasks = api_->ListTasks(who, q);
  if (!tasks.ok()) return res->Reply(StatusResponse(tasks.status()));
  Json out = {{"tasks", Json::array()}};
  for (const pb::Task& t : *tasks) out["tasks"].push_back(TaskToJson(t));
  res->Reply(JsonResponse(200, out));
}

std::string BridgeRoutes::Metrics(const ClusterMetrics& m) const {
  std::string text = PrometheusText(m.stats, m.workers);
  absl::StrAppend(&text, TasksByTypeText(m.counts_by_type),
                  m.dispatch_latency->Render("retire_cluster_dispatch_latency_seconds", "Submit to first assignment."),
                  m.end_to_end_latency->Render("retire_cluster_end_to_end_latency_seconds",
                                               "Submit to terminal state."));
  if (options_.store != nullptr && options_.store->commit_latency() != nullptr) {
    absl::StrAppend(&text, options_.store->commit_latency()->Render("retire_cluster_store_commit_latency_seconds",
                                                                    "One group commit of the task store."));
  }
  if (options_.server_metrics) absl::StrAppend(&text, options_.server_metrics());
  return text;
}

}  // namespace rc::coordinator::http
