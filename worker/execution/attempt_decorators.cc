#include "worker/execution/attempt_decorators.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace rc::worker {

AttemptResult HandlerDispatch::Execute(const Attempt& attempt) {
  const pb::Assignment& a = *attempt.assignment;
  AttemptResult r;
  Handler* handler = handlers_->Find(a.task_type());
  if (handler == nullptr) {
    r.output = absl::NotFoundError(absl::StrCat("this worker does not run task type '", a.task_type(), "'"));
    return r;
  }
  TaskContext ctx{a.task_id(), a.attempt(), a.payload(), attempt.stop, attempt.worker, nullptr,
                  a.internet_required(), nullptr};
  ctx.on_process_start = [&attempt, &a](int pid) {
    pb::TaskProgress p;
    p.set_task_id(a.task_id());
    p.set_attempt(a.attempt());
    p.set_pid(pid);
    attempt.events->Progress(std::move(p));
  };
  ctx.completion = attempt.completion;
  ctx.task_token = a.task_token();
  ctx.callback_url = attempt.callback_url;
  if (sockets_ != nullptr) {
    ctx.open_socket = [this, &a](const std::string& task_dir) { return sockets_->Open(a, task_dir); };
  }
  r.output = handler->Run(ctx);
  r.handler_ran = true;
  return r;
}

AttemptResult SubmitterGuard::Execute(const Attempt& attempt) {
  const auto& accepted = capabilities_->accepted_submitters();
  const std::string& owner = attempt.assignment->owner();
  if (accepted.empty() || std::find(accepted.begin(), accepted.end(), owner) != accepted.end()) {
    return inner_->Execute(attempt);
  }
  AttemptResult r;
  r.output = absl::PermissionDeniedError(absl::StrCat("this worker runs only tasks of submitters ",
                                                      absl::StrJoin(accepted, ", "), ", not of '", owner, "'"));
  return r;
}

AttemptResult OutcomeRules::Execute(const Attempt& attempt) {
  const pb::Assignment& a = *attempt.assignment;
  const StopToken& stop = *attempt.stop;
  if (stop.cancelled()) {
    AttemptResult r;
    r.finished.set_task_id(a.task_id());
    r.finished.set_attempt(a.attempt());
    r.finished.set_status(pb::TASK_STATUS_CANCELLED);
    r.finished.set_error_message("cancelled before it started");
    return r;
  }
  pb::TaskStarted started;
  started.set_task_id(a.task_id());
  started.set_attempt(a.attempt());
  started.set_started_at_ms(absl::ToUnixMillis(attempt.started_at));
  attempt.events->Started(std::move(started));

  AttemptResult r = inner_->Execute(attempt);
  pb::TaskFinished& fin = r.finished;
  fin.set_task_id(a.task_id());
  fin.set_attempt(a.attempt());
  absl::Status status = r.output.status();
  if (r.output.ok()) {
    HandlerOutput& out = *r.output;
    fin.set_result(std::move(out.result));
    fin.set_stdout(std::move(out.stdout));
    fin.set_stderr(std::move(out.stderr));
    fin.set_exit_code(out.exit_code);
    *fin.mutable_usage() = out.usage;
    fin.mutable_usage()->set_pid(0);  // it has ended
    status = out.failure;             // the task ran and failed: never permanent
  }
  if (stop.cancelled()) {
    fin.set_status(pb::TASK_STATUS_CANCELLED);
    fin.set_error_message("cancelled");
  } else if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    fin.set_status(pb::TASK_STATUS_TIMEOUT);  // the handler's own, shorter limit
    fin.set_error_message(std::string(status.message()));
  } else if (stop.expired()) {
    fin.set_status(pb::TASK_STATUS_TIMEOUT);
    fin.set_error_message(absl::StrFormat("timed out after %gs", a.timeout_seconds()));
  } else if (status.ok()) {
    fin.set_status(pb::TASK_STATUS_SUCCESS);
  } else {
    fin.set_status(pb::TASK_STATUS_FAILED);
    fin.set_error_message(std::string(status.message()));
    fin.set_permanent(r.handler_ran && !r.output.ok() && IsPermanentRefusal(r.output.status()));
  }
  return r;
}

AttemptResult TimingDecorator::Execute(const Attempt& attempt) {
  Attempt timed = attempt;
  timed.started_at = clock_->Now();
  AttemptResult r = inner_->Execute(timed);
  const absl::Time end = clock_->Now();
  r.finished.set_started_at_ms(absl::ToUnixMillis(timed.started_at));
  r.finished.set_finished_at_ms(absl::ToUnixMillis(end));
  r.finished.set_execution_time_seconds(absl::ToDoubleSeconds(end - timed.started_at));
  return r;
}

void AttemptMetrics::Record(const pb::TaskFinished& finished) {
  finished_[finished.status()].fetch_add(1);
  run_time_.Observe(finished.execution_time_seconds());
}

AttemptResult MetricsDecorator::Execute(const Attempt& attempt) {
  AttemptResult r = inner_->Execute(attempt);
  metrics_->Record(r.finished);
  return r;
}

std::unique_ptr<AttemptExecutor> MakeAttemptChain(std::unique_ptr<AttemptExecutor> leaf,
                                                  const pb::Capabilities* capabilities, const Clock* clock,
                                                  AttemptMetrics* metrics) {
  auto guarded = std::make_unique<SubmitterGuard>(capabilities, std::move(leaf));
  auto decided = std::make_unique<OutcomeRules>(std::move(guarded));
  auto timed = std::make_unique<TimingDecorator>(clock, std::move(decided));
  return std::make_unique<MetricsDecorator>(metrics, std::move(timed));
}

}  // namespace rc::worker
