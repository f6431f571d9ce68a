// /metrics text: label values from workers and clients cannot break out of their label.
#include <catch2/catch.hpp>

#include "absl/strings/str_split.h"
#include "coordinator/http/prometheus_text.h"

namespace rc::coordinator {
namespace {

namespace pb = ::retire_cluster::v1;

TEST_CASE("Prometheus label values escape backslash, double quote and newline") {
  CHECK(PrometheusLabelValue("plain-id_1") == "plain-id_1");
  CHECK(PrometheusLabelValue("a\\b") == "a\\\\b");
  CHECK(PrometheusLabelValue("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(PrometheusLabelValue("two\nlines") == "two\\nlines");
  CHECK(PrometheusLabelValue("\\\"\n") == "\\\\\\\"\\n");
}

TEST_CASE("A hostile worker device_id stays inside its label: no injected series") {
  pb::Worker w;
  w.mutable_capabilities()->set_device_id("evil\"} 1\nretire_cluster_injected{x=\"y");
  w.set_status(pb::WORKER_STATUS_ONLINE);
  w.set_running(2);
  const std::string text = PrometheusText(pb::Stats(), {w});
  std::vector<std::string> worker_lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    CHECK(line.find("retire_cluster_injected") != 0);  // no line starts a new series
    if (line.find("retire_cluster_worker_running{") == 0) worker_lines.emplace_back(line);
  }
  REQUIRE(worker_lines.size() == 1);
  CHECK(worker_lines[0] ==
        "retire_cluster_worker_running{device_id=\"evil\\\"} 1\\nretire_cluster_injected{x=\\\"y\",status=\"online\"} 2");
}

TEST_CASE("Task types are escaped too, and no gauge is named *_total") {
  const std::string text = TasksByTypeText({{"we\"ird", {{"queued", 3}}}});
  CHECK(text.find("retire_cluster_tasks_by_type{type=\"we\\\"ird\",status=\"queued\"} 3\n") != std::string::npos);
  const std::string all = PrometheusText(pb::Stats(), {});
  CHECK(all.find("# TYPE retire_cluster_workers_known gauge\n") != std::string::npos);
  for (absl::string_view line : absl::StrSplit(all, '\n', absl::SkipEmpty())) {
    if (line.find("# TYPE ") == 0 && line.find(" gauge") != absl::string_view::npos) {
      INFO(std::string(line));
      CHECK(line.find("_total ") == absl::string_view::npos);
    }
  }
}

}  // namespace
}  // namespace rc::coordinator
