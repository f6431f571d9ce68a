#include "client/client.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/js_task_json.h"
#include "common/task_names.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"

namespace rc::client {

namespace {

absl::Status ConvertStatus(const std::string& target, bool tls_without_client_cert, const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // An mTLS coordinator's refusal reaches the client as the server ending the
    // handshake: a closed or reset socket (TLS 1.3) or an alert from the server
    // (TLS 1.2). Nothing listening, or the client distrusting the server ("certificate
    // verify failed"), is not cured by a certificate and gets no hint.
    const std::string& m = s.error_message();
    const bool hint = tls_without_client_cert && (absl::StrContains(m, "Socket closed") ||
                                                  absl::StrContains(m, "Connection reset") ||
                                                  absl::StrContains(m, "alert"));
    return absl::UnavailableError(absl::StrCat(
        "cannot reach coordinator at ", target, ": ", s.error_message(),
        hint ? " (this client presents no TLS certificate; the coordinator may require one: "
               "--tls-cert and --tls-key, or tls_cert_file and tls_key_file in the client config)"
             : ""));
  }
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(
        absl::StrCat("coordinator at ", target, " did not answer in time: ", s.error_message()));
  }
  return FromGrpcStatus(s);
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// Reads a task's snapshots (WatchTask, SubmitAndWatch) into `last` and `on_update` until
// a terminal one, which it returns once the call is over; else how the stream ended. The
// coordinator ends the call with the terminal snapshot (same flight): Finish costs no
// round trip, where cancelling first cost the caller ~60 us (issue 18).
absl::StatusOr<pb::Task> ReadToTerminal(grpc::ClientReader<pb::Task>& reader,
                                        const std::function<void(const pb::Task&)>& on_update, pb::Task* last,
                                        grpc::Status* ended) {
  pb::Task task;
  while (reader.Read(&task)) {
    *last = task;
    if (on_update) on_update(task);
    if (IsTerminal(task.status())) {
      reader.Finish();
      return task;
    }
  }
  *ended = reader.Finish();
  return absl::UnavailableError("stream ended");
}

}  // namespace

ClientOptions ClientOptionsFromEnvironment() {
  ClientOptions o;
  if (std::string target = Env("RETIRE_CLUSTER_COORDINATOR"); !target.empty()) o.target = std::move(target);
  o.token = Env("RETIRE_CLUSTER_TOKEN");
  return o;
}

std::string CurrentTaskId() { return Env("RETIRE_CLUSTER_TASK_ID"); }

Client::Client(ClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // A long Wait must notice a coordinator host that vanished without a reset.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // `list --limit 10000` of tasks with large results exceeds gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(256 << 20);
  auto channel = grpc::CreateCustomChannel(
      options_.target, options_.credentials != nullptr ? options_.credentials : grpc::InsecureChannelCredentials(), args);
  stub_ = pb::ClientService::NewStub(channel);
  batcher_ = std::make_shared<internal::SubmitBatcher>(stub_.get(), Converter(), options_.rpc_timeout,
                                                       Authorization());
}

internal::ConvertFn Client::Converter() const {
  // Holds a copy of the target, not `this`: a call may finish while ~Client runs.
  return [target = options_.target, hint = options_.tls_without_client_cert](const grpc::Status& s) {
    return ConvertStatus(target, hint, s);
  };
}

Client::~Client() {
  std::vector<std::shared_ptr<internal::ResultStream>> streams;
  {
    absl::MutexLock lock(&wait_mu_);
    closing_ = true;
    streams = std::move(ended_);
    if (results_ != nullptr) streams.push_back(std::move(results_));
  }
  for (auto& s : streams) s->Shutdown();
  batcher_->Drain();
}

std::string Client::Authorization() const {
  return options_.token.empty() ? "" : absl::StrCat("Bearer ", options_.token);
}

void Client::Prepare(grpc::ClientContext* ctx) const {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.rpc_timeout)));
  if (!options_.token.empty()) ctx->AddMetadata("authorization", Authorization());
}

absl::Status Client::Convert(const grpc::Status& s) const {
  return ConvertStatus(options_.target, options_.tls_without_client_cert, s);
}

absl::StatusOr<pb::SubmitResponse> Client::Submit(const pb::TaskSpec& spec) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::SubmitRequest req;
  *req.mutable_spec() = spec;
  pb::SubmitResponse resp;
  if (grpc::Status s = stub_->Submit(&ctx, req, &resp); !s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::vector<absl::StatusOr<pb::SubmitResponse>>> Client::SubmitBatch(
    const std::vector<pb::TaskSpec>& specs) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::SubmitBatchRequest req;
  for (const pb::TaskSpec& spec : specs) *req.add_specs() = spec;
  pb::SubmitBatchResponse resp;
  if (grpc::Status s = stub_->SubmitBatch(&ctx, req, &resp); !s.ok()) return Convert(s);
  if (static_cast<size_t>(resp.results_size()) != specs.size()) {
    return absl::InternalError(absl::StrCat("coordinator answered ", resp.results_size(), " of ", specs.size(), " submits"));
  }
  std::vector<absl::StatusOr<pb::SubmitResponse>> out;
  for (const pb::SubmitOutcome& r : resp.results()) {
    if (r.error_code() == 0) {
      out.push_back(r.accepted());
    } else {
      out.push_back(absl::Status(static_cast<absl::StatusCode>(r.error_code()), r.error_message()));
    }
  }
  return out;
}

void Client::SubmitAsync(pb::TaskSpec spec, internal::SubmitDone done) {
  bool closing;
  {
    absl::MutexLock lock(&wait_mu_);
    closing = closing_;
  }
  if (closing) {
    done(absl::CancelledError("the client is closing"));
    return;
  }
  batcher_->Add(std::move(spec), std::move(done));
}

void Client::WaitAsync(const std::string& task_id, internal::WaitDone done) {
  absl::Status ended;
  {
    absl::MutexLock lock(&wait_mu_);
    if (closing_) {
      ended = absl::CancelledError("the client is closing");
    } else if (results_ == nullptr || !results_->Add(task_id, &done).ok()) {
      if (results_ != nullptr) {
        std::erase_if(ended_, [](const auto& s) { return s->done(); });
        ended_.push_back(std::move(results_));
      }
      results_ = internal::ResultStream::Start(stub_.get(), Converter(), Authorization());
      ended = results_->Add(task_id, &done);  // fails only if the new stream failed at once
    }
  }
  if (!ended.ok()) done(ended);
}

absl::StatusOr<pb::Task> Client::Get(const std::string& task_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::GetTaskRequest req;
  req.set_task_id(task_id);
  pb::Task task;
  if (grpc::Status s = stub_->GetTask(&ctx, req, &task); !s.ok()) return Convert(s);
  return task;
}

absl::StatusOr<pb::Task> Client::Wait(const std::string& task_id, absl::Duration timeout,
                                      const std::function<void(const pb::Task&)>& on_update) {
  const absl::Time deadline = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  pb::Task last;
  absl::Duration retry = absl::Milliseconds(100);
  while (true) {
    grpc::ClientContext ctx;
    if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
    if (!options_.token.empty()) ctx.AddMetadata("authorization", Authorization());
    pb::GetTaskRequest req;
    req.set_task_id(task_id);
    auto reader = stub_->WatchTask(&ctx, req);
    grpc::Status s;
    if (absl::StatusOr<pb::Task> t = ReadToTerminal(*reader, on_update, &last, &s); t.ok()) return t;
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("task ", task_id, " still ",
                                                      last.task_id().empty() ? absl::string_view("unfinished") : StatusName(last.status()),
                                                      " after ", absl::FormatDuration(timeout)));
    }
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return s.ok() ? absl::InternalError("watch ended before the task finished") : Convert(s);
    }
    // UNAVAILABLE before any snapshot: the coordinator is unreachable, fail fast.
    // After one: it restarted or the connection broke; resume within the deadline.
    if (last.task_id().empty()) return Convert(s);
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(std::min(retry, deadline - absl::Now())));
    retry = std::min(retry * 2, absl::Seconds(2));
  }
}

absl::StatusOr<pb::Task> Client::SubmitAndWait(const pb::TaskSpec& spec, absl::Duration timeout,
                                               const std::function<void(const pb::Task&)>& on_update) {
  const absl::Time deadline = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  grpc::ClientContext ctx;
  if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
  if (!options_.token.empty()) ctx.AddMetadata("authorization", Authorization());
  pb::SubmitRequest req;
  *req.mutable_spec() = spec;
  auto reader = stub_->SubmitAndWatch(&ctx, req);
  pb::Task last;
  grpc::Status s;
  if (absl::StatusOr<pb::Task> t = ReadToTerminal(*reader, on_update, &last, &s); t.ok()) return t;
  if (last.task_id().empty()) return Convert(s);  // refused or unanswered, as Submit would be
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED || absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat("task ", last.task_id(), " still ", StatusName(last.status()),
                                                    " after ", absl::FormatDuration(timeout)));
  }
  // Accepted, then the stream broke (a coordinator restart): wait on, within the deadline.
  const absl::Duration left = deadline == absl::InfiniteFuture() ? absl::InfiniteDuration() : deadline - absl::Now();
  return Wait(last.task_id(), left, on_update);
}

absl::StatusOr<pb::CancelTaskResponse> Client::Cancel(const std::string& task_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::CancelTaskRequest req;
  req.set_task_id(task_id);
  pb::CancelTaskResponse resp;
  if (grpc::Status s = stub_->CancelTask(&ctx, req, &resp); !s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<pb::CompleteTaskResponse> Client::CompleteTask(const std::string& task_id, pb::TaskStatus status,
                                                              const std::string& result,
                                                              const std::string& error_message) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::CompleteTaskRequest req;
  req.set_task_id(task_id);
  req.set_status(status);
  req.set_result(result);
  req.set_error_message(error_message);
  pb::CompleteTaskResponse resp;
  if (grpc::Status s = stub_->CompleteTask(&ctx, req, &resp); !s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::vector<pb::Task>> Client::List(const pb::ListTasksRequest& request) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::ListTasksResponse resp;
  if (grpc::Status s = stub_->ListTasks(&ctx, request, &resp); !s.ok()) return Convert(s);
  return std::vector<pb::Task>(resp.tasks().begin(), resp.tasks().end());
}

absl::StatusOr<std::vector<pb::Worker>> Client::Workers(const std::string& device_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::ListWorkersRequest req;
  req.set_device_id(device_id);
  pb::ListWorkersResponse resp;
  if (grpc::Status s = stub_->ListWorkers(&ctx, req, &resp); !s.ok()) return Convert(s);
  return std::vector<pb::Worker>(resp.workers().begin(), resp.workers().end());
}

absl::StatusOr<pb::Stats> Client::Stats() {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::Stats stats;
  if (grpc::Status s = stub_->GetStats(&ctx, pb::GetStatsRequest(), &stats); !s.ok()) return Convert(s);
  return stats;
}

absl::StatusOr<pb::Worker> Client::Drain(const std::string& device_id, bool drain) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::DrainWorkerRequest req;
  req.set_device_id(device_id);
  req.set_undrain(!drain);
  pb::Worker worker;
  if (grpc::Status s = stub_->DrainWorker(&ctx, req, &worker); !s.ok()) return Convert(s);
  return worker;
}

absl::StatusOr<pb::PublishJsTaskResponse> Client::PublishJsTask(const std::string& code, const std::string& name) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::PublishJsTaskRequest req;
  req.set_code(code);
  req.set_name(name);
  pb::PublishJsTaskResponse resp;
  if (grpc::Status s = stub_->PublishJsTask(&ctx, req, &resp); !s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::vector<pb::JsTask>> Client::ListJsTasks() {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::ListJsTasksResponse resp;
  if (grpc::Status s = stub_->ListJsTasks(&ctx, pb::ListJsTasksRequest(), &resp); !s.ok()) return Convert(s);
  return std::vector<pb::JsTask>(resp.tasks().begin(), resp.tasks().end());
}

absl::StatusOr<pb::JsTask> Client::GetJsTask(const std::string& name, int version) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::GetJsTaskRequest req;
  req.set_name(name);
  req.set_version(version);
  pb::JsTask task;
  if (grpc::Status s = stub_->GetJsTask(&ctx, req, &task); !s.ok()) return Convert(s);
  return task;
}

absl::StatusOr<pb::RemoveJsTaskResponse> Client::RemoveJsTask(const std::string& name, int version) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  pb::RemoveJsTaskRequest req;
  req.set_name(name);
  req.set_version(version);
  pb::RemoveJsTaskResponse resp;
  if (grpc::Status s = stub_->RemoveJsTask(&ctx, req, &resp); !s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<pb::SubmitResponse> Client::RunJsTask(const std::string& name, const std::string& input_json,
                                                     const pb::TaskSpec& options, int version) {
  using nlohmann::json;
  if (!options.task_type().empty() && options.task_type() != "js") {
    return absl::InvalidArgumentError(
        absl::StrCat("options.task_type: a published task runs as task type js, got '", options.task_type(), "'"));
  }
  json input = json::object();
  if (!input_json.empty()) {
    input = json::parse(input_json, nullptr, false);
    if (input.is_discarded()) return absl::InvalidArgumentError("input: not valid JSON");
  }
  json extra = json::object();
  if (!options.payload().empty()) {
    extra = json::parse(options.payload(), nullptr, false);
    if (extra.is_discarded() || !extra.is_object()) {
      return absl::InvalidArgumentError("options.payload: expected a JSON object of js options, e.g. {\"memory_mb\": 128}");
    }
    for (const char* own : {"name", "version", "input", "code"}) {
      if (extra.contains(own)) {
        return absl::InvalidArgumentError(
            absl::StrCat("options.payload.", own, ": set by RunJsTask's arguments, not in the options"));
      }
    }
  }
  absl::StatusOr<std::string> payload = JsRunPayload(name, version, input, "input", extra);
  if (!payload.ok()) return payload.status();
  pb::TaskSpec spec = options;
  spec.set_task_type("js");
  spec.set_payload(*std::move(payload));
  return Submit(spec);
}

}  // namespace rc::client
