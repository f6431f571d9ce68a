// retire-cluster-main: the coordinator. Parses flags/YAML, starts the server, waits
// for SIGINT/SIGTERM, shuts down cleanly.
#include <sys/resource.h>

#include <cstdio>
#include <iostream>

#include "common/config.h"
#include "common/process.h"
#include "coordinator/server.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kUsage[] =
    "usage: retire-cluster-main [--host 0.0.0.0] [--port 8080] [--http-port 8081]\n"
    "                           [--data-dir DIR] [--config FILE]\n\n"
    "The retire-cluster coordinator: holds the task queue and schedules tasks onto\n"
    "workers that join with `retire-cluster-worker --join HOST:PORT`.\n\n";

// Each HTTP connection, gRPC stream and store file is a descriptor; the usual soft
// limit (1024) is far below the HTTP connection caps, and the hard limit is ours to take.
void RaiseFileLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == files.rlim_max) return;
  const rlim_t was = files.rlim_cur;
  files.rlim_cur = files.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) {
    spdlog::warn("cannot raise the open-file limit from {} to {}", was, files.rlim_max);
    return;
  }
  spdlog::info("open-file limit raised from {} to {}", was, files.rlim_cur);
}

}  // namespace

// jemalloc (linked into this binary): a background thread returns freed pages to the
// system after a burst even when the coordinator then goes idle (without it, pages are
// purged only by later allocations in the same arena).
extern "C" {
const char* malloc_conf = "background_thread:true";
}

int main(int argc, char** argv) {
  rc::DisableMutexDeadlockDetection();
  rc::BlockShutdownSignals();
  auto parsed = rc::ParseDaemonFlags("retire-cluster-main", kUsage, rc::CoordinatorFlagSpecs(), argc, argv);
  if (const int* code = std::get_if<int>(&parsed)) return *code;
  const rc::ParsedFlags& flags = std::get<rc::ParsedFlags>(parsed);
  absl::StatusOr<rc::CoordinatorConfig> config = rc::LoadCoordinatorConfig(flags);
  if (!config.ok()) {
    std::cerr << "retire-cluster-main: " << config.status().message() << "\n";
    return 2;
  }
  rc::SetupLogging(config->log_level, config->log_format);
  RaiseFileLimit();
  auto server = rc::coordinator::CoordinatorServer::Start(*config);
  if (!server.ok()) {
    std::cerr << "retire-cluster-main: " << server.status().message() << "\n";
    return 1;
  }
  std::printf("retire-cluster-main %s listening on %s:%d http %s:%d\n", RC_VERSION, config->host.c_str(),
              (*server)->port(), config->host.c_str(), (*server)->http_port());
  std::fflush(stdout);
  spdlog::info("listening: gRPC {}:{}, HTTP {}:{}", config->host, (*server)->port(), config->host, (*server)->http_port());

  int sig = rc::WaitForShutdownSignal();
  spdlog::info("signal {} received; shutting down", sig);
  (*server)->Shutdown();
  spdlog::info("stopped");
  return 0;
}
