#pragma once
// The one small interface an attempt runs through (STYLE.md rule 11). The Executor owns
// slots, queueing and cancel; everything else that applies to every attempt (which
// submitters this worker serves, what the coordinator hears and with which status, when
// it ran, what it counts toward) is a decorator around the handlers: see
// attempt_decorators.h for the chain.

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "retire_cluster/v1/worker_service.pb.h"
#include "worker/execution/stop_token.h"
#include "worker/handler.h"

namespace rc::worker {

// Where attempts report. Called from slot threads; must not block for long.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Started(pb::TaskStarted event) = 0;
  virtual void Finished(pb::TaskFinished event) = 0;
  virtual void Progress(pb::TaskProgress event) = 0;
  // The whole set of attempts waiting on their subtree, after each change (the Executor
  // calls it in order: the last call is the current set).
  virtual void Waiting(pb::WaitingAttempts /*attempts*/) {}
};

// One attempt as the Executor hands it down the chain. Everything it points to outlives
// the Execute call.
struct Attempt {
  const pb::Assignment* assignment = nullptr;
  const StopToken* stop = nullptr;
  WorkerSnapshot worker;
  // Started and Progress go here; Finished is the Executor's to send (after the chain).
  EventSink* events = nullptr;
  // When it started, as TimingDecorator read it from the clock (before calling inward).
  absl::Time started_at = absl::InfinitePast();
  // Completions from outside for this attempt (TaskContext::completion); nullptr: none.
  const CompletionInbox* completion = nullptr;
  // RC_CALLBACK_URL for this attempt (TaskContext::callback_url); "": none.
  std::string callback_url;
};

// What the attempt came to, filled in as it travels back out through the chain.
struct AttemptResult {
  // What the handler returned, or why none ran (no handler for the type, a guard).
  absl::StatusOr<HandlerOutput> output = absl::InternalError("the attempt did not run");
  // Only a handler's own refusal can make a failure permanent (handler.h): a guard's
  // cannot, since another worker may serve the task.
  bool handler_ran = false;
  // The event the coordinator gets: status and error from OutcomeRules, times from
  // TimingDecorator.
  pb::TaskFinished finished;
};

class AttemptExecutor {
 public:
  virtual ~AttemptExecutor() = default;
  // Runs the attempt to its end. Never throws; every failure is in the result.
  virtual AttemptResult Execute(const Attempt& attempt) = 0;
};

}  // namespace rc::worker
