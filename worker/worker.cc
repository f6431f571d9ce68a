#include "worker/worker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/task_names.h"
#include "common/tls.h"
#include "spdlog/spdlog.h"
#include "worker/capability_probe.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/worker_key.h"

namespace rc::worker {

absl::StatusOr<std::unique_ptr<Worker>> Worker::Start(const WorkerConfig& config,
                                                      std::function<void(absl::Status)> on_fatal,
                                                      const Clock* clock) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(config.tls, config.use_tls);
  if (!credentials.ok()) return credentials.status();
  if (!config.use_tls && !IsLoopbackHost(config.join.substr(0, config.join.rfind(':')))) {
    spdlog::warn("PLAINTEXT to {}: tasks and results cross the network unencrypted; set tls_ca_file (or tls: true)",
                 config.join);
  }
  std::unique_ptr<Worker> w(new Worker(clock));
  w->config_ = config;
  // An unavailable containment tier stops the worker here, before it takes any task.
  absl::StatusOr<std::shared_ptr<const Containment>> containment = Containment::Create(config);
  if (!containment.ok()) return containment.status();
  AddBuiltinHandlers(&w->handlers_);
  if (absl::Status s = AddOptInHandlers(config, *containment, &w->handlers_); !s.ok()) return s;
  std::vector<std::string> types = w->handlers_.types();
  w->capabilities_ = ProbeCapabilities(config, types, **containment);
  Worker* raw = w.get();
  auto probe = [raw, types, c = *containment] { return ProbeCapabilities(raw->config_, types, *c); };
  // Results are signed with the key in the data dir; its public half goes with register.
  absl::StatusOr<Ed25519Key> key = LoadOrCreateWorkerKey(config.data_dir);
  if (!key.ok()) return key.status();
  spdlog::info("worker {} signs results with {}/{}: public key {}", w->capabilities_.device_id(), config.data_dir,
               kWorkerKeyFile, PublicKeyHex(key->public_key()));
  w->capabilities_.set_public_key(key->public_key());
  auto keyed_probe = [probe, public_key = key->public_key()] {
    pb::Capabilities c = probe();
    c.set_public_key(public_key);
    return c;
  };
  w->signer_ = std::make_unique<ResultSigner>(*key, w->capabilities_.device_id());  // signed_at: real time
  w->outbox_.SignWith(w->signer_.get());
  // One channel to the coordinator: the session's stream and the tasks' relayed calls.
  std::shared_ptr<grpc::Channel> channel = MakeCoordinatorChannel(config, std::move(*credentials));
  // The gateway's waiting reports reach the executor, made just below and gone only after it.
  auto gateway = TaskGateway::Start(channel, config.data_dir, [raw](const std::string& task_id, int attempt,
                                                                    bool waiting) {
    raw->executor_->SetWaiting(task_id, attempt, waiting);
  });
  if (!gateway.ok()) return gateway.status();
  w->gateway_ = std::move(*gateway);
  w->executor_ = std::make_unique<Executor>(w->capabilities_.slots(), &w->handlers_, &w->outbox_,
                                            w->capabilities_, clock, w->gateway_.get());
  w->session_ = std::make_unique<Session>(config, channel, w->executor_.get(), &w->outbox_, keyed_probe,
                                          std::move(on_fatal), clock);
  w->session_->Start();
  if (config.metrics_port >= 0) {
    auto metrics = MetricsServer::Start(config.metrics_host, config.metrics_port, [raw] { return raw->MetricsText(); });
    if (!metrics.ok()) return metrics.status();
    w->metrics_ = std::move(*metrics);
  }
  return w;
}

int Worker::Drain(absl::Duration grace) {
  outbox_.RequestDraining();
  outbox_.Wake();
  executor_->WaitIdle(clock_->Now() + grace);
  const int handed_back = static_cast<int>(executor_->HeldAttempts().size());
  executor_->Stop();
  outbox_.WaitAcknowledged(absl::Seconds(2));
  session_->Leave(absl::Seconds(2));
  return handed_back;
}

std::string Worker::MetricsText() const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ", v, "\n");
  };
  gauge("retire_cluster_worker_slots", "Tasks this worker runs at once.", capabilities_.slots());
  gauge("retire_cluster_worker_running", "Attempts running now.", executor_->running());
  gauge("retire_cluster_worker_waiting", "Of those, attempts waiting on their subtree (their slots lent).",
        executor_->waiting());
  gauge("retire_cluster_worker_connected", "1 while registered with the coordinator.", connected() ? 1 : 0);
  absl::StrAppend(&out, "# HELP retire_cluster_worker_attempts_total Attempts finished here, by outcome.\n",
                  "# TYPE retire_cluster_worker_attempts_total counter\n");
  for (pb::TaskStatus s : {pb::TASK_STATUS_SUCCESS, pb::TASK_STATUS_FAILED, pb::TASK_STATUS_CANCELLED,
                           pb::TASK_STATUS_TIMEOUT}) {
    absl::StrAppend(&out, "retire_cluster_worker_attempts_total{status=\"", StatusName(s), "\"} ",
                    executor_->finished(s), "\n");
  }
  // Results are signed one batch per message (issue 18): results / batches is how many
  // results each Ed25519 signature covers.
  absl::StrAppend(&out, "# HELP retire_cluster_worker_signed_batches_total Signatures made, one per message of results.\n",
                  "# TYPE retire_cluster_worker_signed_batches_total counter\n",
                  "retire_cluster_worker_signed_batches_total ", signer_->batches(), "\n",
                  "# HELP retire_cluster_worker_signed_results_total Results signed (in those batches).\n",
                  "# TYPE retire_cluster_worker_signed_results_total counter\n",
                  "retire_cluster_worker_signed_results_total ", signer_->results(), "\n");
  absl::StrAppend(&out, executor_->run_time().Render("retire_cluster_worker_run_time_seconds",
                                                     "How long attempts ran here."));
  return out;
}

void Worker::Stop() {
  metrics_.reset();
  if (session_ != nullptr) session_->Stop();
  if (executor_ != nullptr) executor_->Stop();
  // After the executor: no attempt holds a socket any more.
  gateway_.reset();
}

Worker::~Worker() { Stop(); }

}  // namespace rc::worker
