// retire-cluster-worker: joins a coordinator and runs the tasks it is given.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/config.h"
#include "common/process.h"
#include "spdlog/spdlog.h"
#include "worker/worker.h"

namespace {

constexpr char kUsage[] =
    "usage: retire-cluster-worker --join HOST:PORT [--device-id ID] [--role compute]\n"
    "                             [--tags a,b] [--slots N] [--allow TYPE,...]\n"
    "                             [--node-task-root DIR] [--plugin-dir DIR]\n"
    "                             [--data-dir DIR] [--config FILE]\n\n"
    "A retire-cluster worker: registers this machine's capabilities with the\n"
    "coordinator and runs the tasks it assigns (echo, sleep, system_info built in).\n\n";

}  // namespace

int main(int argc, char** argv) {
  rc::DisableMutexDeadlockDetection();
  rc::BlockShutdownSignals();
  auto parsed = rc::ParseDaemonFlags("retire-cluster-worker", kUsage, rc::WorkerFlagSpecs(), argc, argv);
  if (const int* code = std::get_if<int>(&parsed)) return *code;
  const rc::ParsedFlags& flags = std::get<rc::ParsedFlags>(parsed);
  absl::StatusOr<rc::WorkerConfig> config = rc::LoadWorkerConfig(flags);
  if (!config.ok()) {
    std::cerr << "retire-cluster-worker: " << config.status().message() << "\n";
    return 2;
  }
  rc::SetupLogging(config->log_level, config->log_format);
  // A fatal session error ends the process like a signal would, but exits non-zero.
  static absl::Mutex fatal_mu;
  static std::string fatal_error;
  auto on_fatal = [](absl::Status s) {
    {
      absl::MutexLock lock(&fatal_mu);
      fatal_error = std::string(s.message());
    }
    kill(getpid(), SIGTERM);
  };
  auto worker = rc::worker::Worker::Start(*config, on_fatal);
  if (!worker.ok()) {
    std::cerr << "retire-cluster-worker: " << worker.status().message() << "\n";
    return 2;
  }
  const auto& caps = (*worker)->capabilities();
  spdlog::info("worker {} ({} {} {}, {} cores, {:.1f} GB RAM, {:.1f} GB free disk{}) joining {}", caps.device_id(),
               caps.platform(), caps.arch(), caps.hostname(), caps.cpu_cores(), caps.memory_gb(), caps.storage_gb(),
               caps.gpu() ? ", GPU " + caps.gpu_name() : "", config->join);

  int sig = rc::WaitForShutdownSignal();
  {
    absl::MutexLock lock(&fatal_mu);
    if (!fatal_error.empty()) {
      (*worker)->Stop();
      std::cerr << "retire-cluster-worker: " << fatal_error << "\n";
      return 1;
    }
  }
  spdlog::info("signal {} received; draining for up to {}s (send it again to stop at once)", sig,
               absl::ToDoubleSeconds(config->drain_grace));
  // Drain on a helper thread so that a second signal can cut it short.
  absl::Notification drained;
  std::thread drainer([&] {
    int handed_back = (*worker)->Drain(config->drain_grace);
    if (handed_back > 0) spdlog::warn("{} unfinished tasks handed back to the coordinator", handed_back);
    drained.Notify();
  });
  while (!drained.HasBeenNotified()) {
    if (rc::WaitForShutdownSignalFor(absl::Milliseconds(100)) != 0) {
      spdlog::warn("second signal: stopping now");
      (*worker)->Stop();
    }
  }
  drainer.join();
  spdlog::info("stopped");
  return 0;
}
