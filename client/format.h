#pragma once
// Human-readable output of the CLIs (the --json shapes live in common/json_view.h).

#include <string>
#include <vector>

#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::client {

namespace pb = ::retire_cluster::v1;

std::string FormatTask(const pb::Task& task);  // "key: value" lines
// A task's resource use in one line ("" when none): while it runs "pid 123, cpu 12.5%,
// memory 45.2 MiB, cpu time 3.10s (live)"; once ended "cpu time 3.10s, peak memory 45.2 MiB".
std::string FormatUsage(const pb::ResourceUsage& usage);
std::string FormatTaskTable(const std::vector<pb::Task>& tasks);
std::string FormatWorkerTable(const std::vector<pb::Worker>& workers);
std::string FormatWorker(const pb::Worker& worker);
std::string FormatStats(const pb::Stats& stats);

// Left-aligned columns separated by two spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace rc::client
