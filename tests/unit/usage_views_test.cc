// How a task's resource use reads: the JSON view (GET /tasks/{id}, --json; the Python SDK
// mirrors it) and the CLI's `usage:` line, while it runs (a live sample) and once ended.
#include <catch2/catch.hpp>

#include "client/format.h"
#include "common/json_view.h"

namespace rc {
namespace {

namespace pb = ::retire_cluster::v1;

pb::Task Live() {
  pb::Task t;
  t.set_task_id("task-1");
  t.set_status(pb::TASK_STATUS_RUNNING);
  pb::ResourceUsage* u = t.mutable_resource_usage();
  u->set_pid(123);
  u->set_cpu_seconds(3.1);
  u->set_cpu_percent(12.5);
  u->set_memory_bytes(47395635);  // 45.2 MiB
  u->set_sampled_at_ms(1700000000123);
  return t;
}

}  // namespace

TEST_CASE("The JSON view shows a running task's live sample, sampled_at in RFC 3339") {
  Json u = TaskToJson(Live())["resource_usage"];
  CHECK(u["pid"] == 123);
  CHECK(u["cpu_seconds"] == 3.1);
  CHECK(u["cpu_percent"] == 12.5);
  CHECK(u["memory_bytes"] == 47395635);
  CHECK(u["sampled_at"] == "2023-11-14T22:13:20.123Z");
  std::vector<std::string> keys;
  for (auto it = u.begin(); it != u.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"cpu_seconds", "peak_rss_bytes", "pid", "cpu_percent", "memory_bytes",
                                         "sampled_at"});

  pb::Task ended;
  ended.set_status(pb::TASK_STATUS_SUCCESS);
  ended.mutable_resource_usage()->set_cpu_seconds(2.0);
  Json e = TaskToJson(ended)["resource_usage"];
  CHECK(e["sampled_at"].is_null());
  CHECK(e["cpu_percent"] == 0.0);
  CHECK(e["memory_bytes"] == 0);
}

TEST_CASE("The CLI prints one usage line: live while sampled, totals once ended, none without any") {
  CHECK(client::FormatUsage(Live().resource_usage()) ==
        "pid 123, cpu 12.5%, memory 45.2 MiB, cpu time 3.10s (live)");
  CHECK(client::FormatTask(Live()).find("usage:                 pid 123, cpu 12.5%, memory 45.2 MiB") !=
        std::string::npos);
  pb::ResourceUsage started;
  started.set_pid(77);  // the process started, no sample yet
  CHECK(client::FormatUsage(started) == "pid 77");
  pb::ResourceUsage ended;
  ended.set_cpu_seconds(1.234);
  ended.set_peak_rss_bytes(3 << 20);
  CHECK(client::FormatUsage(ended) == "cpu time 1.23s, peak memory 3.0 MiB");
  CHECK(client::FormatUsage(pb::ResourceUsage()).empty());
  pb::Task none;
  none.set_task_id("t");
  CHECK(client::FormatTask(none).find("usage:") == std::string::npos);
}

}  // namespace rc
