#pragma once
// POST /tasks/{id}/complete (DESIGN.md "Browser automation"): a running attempt completed
// from outside with its own task token (Authorization: Bearer <RETIRE_CLUSTER_TOKEN>).
//   body {"status": "success"|"failed", "result": {...}?, "error": "..."?}
//   -> 202 {"task_id", "attempt", "accepted": true}: handed to the worker running the
//      attempt; the task ends when the worker reports it (GET /tasks/{id}/wait).
// Errors as every route: 400 (a bad field, named), 401 (no or an ended attempt's token),
// 403 (a client token, or another task's token), 409 (the task is not running), 503 (its
// worker is disconnected: retry). One ClientApi::CompleteTask call, as gRPC CompleteTask.

#include <memory>
#include <string>

#include "coordinator/api/client_api.h"
#include "coordinator/http/http_types.h"

namespace rc::coordinator::http {

// Answers `req` for the admitted caller `who` (ClientOp::kCompleteTask) on task `task_id`.
void CompleteTaskRoute(ClientApi* api, const std::string& task_id, const HttpRequest& req,
                       const std::shared_ptr<Responder>& res, const Principal& who);

}  // namespace rc::coordinator::http
