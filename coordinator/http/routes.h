#pragma once
// The HTTP/JSON bridge's API (DESIGN.md "HTTP bridge"): maps a parsed request to one
// client API call (coordinator/api: authentication, authorization, limits and error texts
// live there, shared with gRPC) and answers through a Responder. Knows no socket, so tests and the fuzzer
// drive it directly. Answers are the API's contract, byte for byte: JSON with the task
// model's field names, errors {"error": "..."} with a 4xx/5xx code.
//
// Design assumption: nothing here waits. Submits and cancels answer from the core's
// callbacks; a long poll (GET /tasks/{id}/wait) is a TaskSink plus a timer, holding no
// thread while it waits.

#include <functional>
#include <memory>
#include <string>

#include "common/auth.h"
#include "common/json_view.h"
#include "coordinator/api/client_api.h"
#include "coordinator/http/http_types.h"

namespace rc::coordinator::http {

struct RoutesOptions {
  // Under mTLS every connection presented a verified client certificate.
  bool client_certified = false;
  // Adds its commit latency to /metrics when set.
  const TaskStore* store = nullptr;
  // More /metrics text (the server's connection counts); may be empty.
  std::function<std::string()> server_metrics;
};

class BridgeRoutes {
 public:
  // `api` and `deferrer` must outlive every request handed to Handle.
  BridgeRoutes(ClientApi* api, Deferrer* deferrer, RoutesOptions options);

  // Answers `request` through `responder`, now or later; never throws.
  void Handle(const HttpRequest& request, std::shared_ptr<Responder> responder);

 private:
  void Route(const HttpRequest& req, const std::shared_ptr<Responder>& res);
  void SubmitOne(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who);
  void SubmitBatch(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who);
  void WaitFor(const std::string& id, const HttpRequest& req, const std::shared_ptr<Responder>& res,
               const Principal& who);
  // The mission executor's API (DESIGN.md "Missions over HTTP"), in missions.cc.
  void ExecuteMission(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who);
  void BrowserControl(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who);
  void ListTasks(const HttpRequest& req, const std::shared_ptr<Responder>& res, const Principal& who);
  std::string Metrics(const ClusterMetrics& m) const;

  ClientApi* const api_;
  Deferrer* const deferrer_;
  const RoutesOptions options_;
};

// How a long poll answers with the task: at its end (terminal status), or as it is when
// the wait's time ran out or the core shut down (any other status).
using TaskReply = std::function<HttpResponse(const pb::Task& task)>;

// Watches `task_id` for `who` (the API's watch check) and answers `responder` with
// `reply` once the task ends or after `seconds`, holding no thread meanwhile; the client
// going away releases the watch. The watch's refusal is answered at once.
void AwaitTask(ClientApi* api, Deferrer* deferrer, const Principal& who, const std::string& task_id, double seconds,
               std::shared_ptr<Responder> responder, TaskReply reply);

// A Status as {"error": message} with its HTTP code (INVALID_ARGUMENT 400, ...).
HttpResponse StatusResponse(const absl::Status& s);
// A request body as JSON, whatever its Content-Type (curl -d sends form-urlencoded);
// INVALID_ARGUMENT "body: not valid JSON".
absl::StatusOr<nlohmann::json> JsonBody(const HttpRequest& req);

// Replies echo what clients sent (paths, ids, query values), which need not be UTF-8: a
// strict dump would throw.
std::string JsonText(const Json& body);
HttpResponse JsonResponse(int status, const Json& body);
// {"error": message} with `status`.
HttpResponse ErrorResponse(int status, const std::string& message);
// True for the methods HTTP/1.1 clients send (GET HEAD POST PUT PATCH DELETE OPTIONS):
// one of them on no route is 404, any other method 400 (as cpp-httplib answered).
bool IsKnownMethod(absl::string_view method);

}  // namespace rc::coordinator::http
