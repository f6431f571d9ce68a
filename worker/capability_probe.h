#pragma once
// Reads what this machine is: cores, RAM, free disk, platform, arch, hostname, GPU,
// and (where configured) internet reachability. Everything comes from the OS; the
// configuration only adds identity (device id, role, tags) and slots.

#include <string>
#include <vector>

#include "common/config.h"
#include "worker/process/containment.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::worker {

namespace pb = ::retire_cluster::v1;

struct LoadInfo {
  double load1 = 0, load5 = 0, load15 = 0;
  double memory_available_gb = 0;
};

// `task_types` are the handlers this worker runs; `containment` (checked at startup)
// gives the tier and the cgroup limits enforced. Creates config.data_dir if missing
// (free disk is measured there).
pb::Capabilities ProbeCapabilities(const WorkerConfig& config, const std::vector<std::string>& task_types,
                                   const Containment& containment);

LoadInfo ReadLoad();

// Platform name as DESIGN.md spells it: linux, android, darwin, windows.
std::string DetectPlatform();
// "" when no GPU is found; otherwise a short description ("NVIDIA GeForce ...").
std::string DetectGpu();
// True when a TCP connection to host:port opens within `timeout_ms`.
bool CanConnect(const std::string& address, int timeout_ms);

}  // namespace rc::worker
