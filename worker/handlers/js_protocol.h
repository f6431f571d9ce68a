#pragma once
// The `js` task's payload and what the engine host's `done` makes of an attempt: pure
// functions (js_handler.cc does the I/O), so every branch is unit-tested without node.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace rc::worker {

// A js payload as the worker receives it: the coordinator has resolved a published
// `name` into `code` (DESIGN.md "JavaScript tasks").
struct JsPayload {
  std::string code;
  std::string filename = "task.js";  // in errors: task.js, or NAME@vVERSION.js when published
  nlohmann::json input = nlohmann::json::object();
  int memory_mb = 64;
};

constexpr int kMinJsMemoryMb = 1;
constexpr int kMaxJsMemoryMb = 2048;

// INVALID_ARGUMENT naming the field: payload not an object, code missing (also when only
// `name` came: the coordinator resolves names), not a string or empty, memory_mb not an
// integer in 1..2048, name/version of the wrong type.
absl::StatusOr<JsPayload> ParseJsPayload(const std::string& text);

// The host's own deadline for a task with `remaining` until the attempt's: 250 ms later,
// so that the Executor's TIMEOUT (and the `cancel` it makes us send) comes first. At least
// 1 ms, at most 2^31-1 ms (node's timer limit, 24.8 days; also for an infinite one).
int64_t HostTimeoutMs(absl::Duration remaining);

// {"op":"run", "id", "code", "filename", "input", "memory_mb", "timeout_ms"}.
nlohmann::json RunMessage(const std::string& id, const JsPayload& payload, int64_t timeout_ms);

// An error object of `done` ({name, message, stack, line?, column?}; a thrown non-object
// comes as itself) as the task's error text: "Name: message", then the JS stack, then
// "    at FILE:LINE:COL" when the host gave a position the stack does not show.
std::string FormatJsError(const nlohmann::json& error, const std::string& filename);

// What a `done` message makes of the attempt.
struct JsOutcome {
  std::string result = "null";  // JSON text (ok)
  absl::Status failure;         // the task failed: the message names the error or the limit
  std::string stderr;           // the error and its stack
  // The module failed while loading (the host's `phase: "load"`: a syntax error, a throw at
  // its top level, no exported function): every attempt would fail alike, so the handler
  // refuses it as the payload's fault (INVALID_ARGUMENT, permanent: handler.h).
  bool load_failure = false;
};
// ok: the result (any JSON value; absent is null). Not ok: failure ABORTED with the
// formatted error; limit "memory" names memory_mb ("memory_mb (64 MiB) exceeded: ..."),
// "stack" says "stack overflow", "timeout" is DEADLINE_EXCEEDED (the task ends TIMEOUT),
// "cancelled" is CANCELLED.
JsOutcome FromDone(const nlohmann::json& done, const JsPayload& payload);

}  // namespace rc::worker
