// The HTTP/JSON bridge with a real HTTP client, including every error case.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/json_view.h"
#include "tests/integration/cluster_fixture.h"

namespace rc::testing {
namespace {

using nlohmann::json;

struct Http {
  explicit Http(Cluster& c) : client("127.0.0.1", c.http_port()) { client.set_read_timeout(20, 0); }
  httplib::Result Post(const std::string& path, const std::string& body) {
    return client.Post(path.c_str(), body, "application/json");
  }
  httplib::Client client;
};

json Parse(const httplib::Result& r) {
  REQUIRE(r);
  return json::parse(r->body);
}

}  // namespace

TEST_CASE("HTTP: submit, get, wait, list, cancel, workers, stats, healthz") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2));
  Http http(cluster);

  auto created = http.Post("/tasks", R"({"task_type":"echo","payload":{"message":"hi"},"priority":"high",
                                         "metadata":{"owner":"me"}})");
  REQUIRE(created);
  CHECK(created->status == 201);
  json c = json::parse(created->body);
  std::string id = c["task_id"];
  auto done = http.client.Get(("/tasks/" + id + "/wait?timeout=10").c_str());
  json t = Parse(done);
  CHECK(done->status == 200);
  CHECK(t["status"] == "success");
  CHECK(t["result"] == json{{"message", "hi"}});
  CHECK(t["priority"] == "high");
  CHECK(t["metadata"]["owner"] == "me");
  CHECK(Parse(http.client.Get(("/tasks/" + id).c_str()))["task_id"] == id);

  auto listed = Parse(http.client.Get("/tasks?status=success&limit=1"));
  CHECK(listed["tasks"].size() == 1);

  std::string waiting = json::parse(http.Post("/tasks", R"({"task_type":"echo","requirements":{"required_tags":["x"]}})")->body)["task_id"];
  auto cancelled = http.client.Delete(("/tasks/" + waiting).c_str());
  CHECK(Parse(cancelled) == json{{"task_id", waiting}, {"cancelled", true}});
  CHECK(Parse(http.client.Delete(("/tasks/" + waiting).c_str()))["cancelled"] == false);

  CHECK(Parse(http.client.Get("/workers"))["workers"][0]["device_id"] == "w1");
  json stats = Parse(http.client.Get("/stats"));
  CHECK(stats["tasks"]["success"] == 1);
  CHECK(stats["tasks"]["cancelled"] == 1);
  CHECK(Parse(http.client.Get("/healthz")) == json{{"status", "ok"}});

  auto batch = Parse(http.Post("/tasks/batch", R"({"tasks":[{"task_type":"echo"},{"task_type":"echo","priority":"asap"}]})"));
  REQUIRE(batch["tasks"].size() == 2);
  CHECK(batch["tasks"][0].contains("task_id"));
  CHECK(batch["tasks"][1]["error"] == "tasks[1].priority: unknown priority 'asap' (expected low, normal, high or urgent)");

  auto again = http.Post("/tasks", R"({"task_type":"echo","idempotency_key":"k"})");
  auto repeat = http.Post("/tasks", R"({"task_type":"echo","idempotency_key":"k"})");
  CHECK(again->status == 201);
  CHECK(repeat->status == 200);
  CHECK(json::parse(repeat->body)["task_id"] == json::parse(again->body)["task_id"]);
}

TEST_CASE("HTTP: every error is JSON with the right code, naming the problem") {
  Cluster cluster;
  Http http(cluster);
  auto check = [&](const httplib::Result& r, int code, const std::string& error) {
    REQUIRE(r);
    CHECK(r->status == code);
    CHECK(json::parse(r->body)["error"] == error);
  };
  check(http.Post("/tasks", "{not json"), 400, "body: not valid JSON");
  check(http.Post("/tasks", R"({"payload":{}})"), 400, "task_type: required");
  check(http.Post("/tasks", R"({"task_type":"echo","colour":"red"})"), 400, "colour: unknown field");
  check(http.Post("/tasks", R"({"task_type":7})"), 400, "task_type: expected a string");
  check(http.Post("/tasks", R"({"task_type":"echo","payload":[1]})"), 400, "payload: expected a JSON object");
  check(http.Post("/tasks", R"({"task_type":"echo","requirements":{"min_cpu_cores":"4"}})"), 400,
        "requirements.min_cpu_cores: expected an integer");
  check(http.Post("/tasks", R"({"task_type":"echo","requirements":{"timeout_seconds":-1}})"), 400,
        "requirements.timeout_seconds: must be greater than 0, got -1");
  check(http.Post("/tasks", R"({"task_type":"echo","requirements":{"gpu":true}})"), 400,
        "requirements.gpu: unknown field");
  check(http.client.Get("/tasks/task-nope"), 404, "no task with id 'task-nope'");
  check(http.client.Delete("/tasks/task-nope"), 404, "no task with id 'task-nope'");
  check(http.client.Get("/tasks/task-nope/wait?timeout=1"), 404, "no task with id 'task-nope'");
  check(http.client.Get("/tasks?status=done"), 400,
        "status: unknown status 'done' (expected pending, queued, assigned, running, success, failed, cancelled or timeout)");
  check(http.client.Get("/tasks?limit=0"), 400, "limit: must be 1..10000, got 0");
  check(http.client.Get("/nope"), 404, "no such endpoint: GET /nope");
  std::string big = R"({"task_type":"echo","payload":{"x":")" + std::string(3 << 20, 'x') + R"("}})";
  auto r = http.Post("/tasks", big);
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(json::parse(r->body)["error"] == "body larger than 2097152 bytes (the limit follows max_payload_bytes)");
  check(http.client.Get("/tasks/x/wait?timeout=abc"), 400, "timeout: expected seconds in (0, 300]");
}

TEST_CASE("HTTP: /metrics parses as Prometheus text and agrees with stats") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2));
  Http http(cluster);
  for (int i = 0; i < 3; ++i) {
    std::string id = json::parse(http.Post("/tasks", R"({"task_type":"echo"})")->body)["task_id"];
    REQUIRE(Parse(http.client.Get(("/tasks/" + id + "/wait?timeout=10").c_str()))["status"] == "success");
  }
  auto m = http.client.Get("/metrics");
  REQUIRE(m);
  CHECK(m->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  static const std::regex kSample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.e+-]+$)");
  static const std::regex kComment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(m->body, '\n', absl::SkipEmpty())) {
    std::string l(line);
    INFO(l);
    CHECK((std::regex_match(l, kSample) || std::regex_match(l, kComment)));
    if (l[0] != '#') samples[l.substr(0, l.rfind(' '))] = std::stod(l.substr(l.rfind(' ') + 1));
  }
  json stats = Parse(http.client.Get("/stats"));
  CHECK(samples["retire_cluster_tasks{status=\"success\"}"] == stats["tasks"]["success"].get<double>());
  CHECK(samples["retire_cluster_tasks_scheduled_total"] == stats["tasks_scheduled"].get<double>());
  CHECK(samples["retire_cluster_workers_online"] == 1);
  CHECK(samples["retire_cluster_slots"] == 2);
  CHECK(samples.count("retire_cluster_worker_running{device_id=\"w1\",status=\"online\"}") == 1);
  CHECK(samples["retire_cluster_tasks_by_type{type=\"echo\",status=\"success\"}"] == 3);
  CHECK(samples["retire_cluster_end_to_end_latency_seconds_count"] == 3);
  CHECK(samples["retire_cluster_end_to_end_latency_seconds_bucket{le=\"+Inf\"}"] == 3);
  CHECK(samples["retire_cluster_dispatch_latency_seconds_count"] == 3);
  CHECK(samples["retire_cluster_store_commit_latency_seconds_count"] >= 1);
  CHECK(samples["retire_cluster_workers_known"] == 1);
  CHECK(samples.count("retire_cluster_workers_total") == 0);  // a gauge may not end in _total
  CHECK(samples["retire_cluster_http_connections"] >= 1);
}

namespace {
// A worker link that drops what the coordinator sends (the worker is only a name here).
class SilentLink final : public coordinator::WorkerLink {
 public:
  void Send(pb::CoordinatorMessage) override {}
  void Close(absl::Status) override {}
};
}  // namespace

TEST_CASE("HTTP: /metrics passes promtool check metrics, a hostile worker device_id included") {
  Cluster cluster;
  cluster.AddWorker(Cluster::Worker("w1", 2));
  // The device id a hostile worker sent in the review: a quote and a newline that
  // would otherwise end its label and start a series of its own.
  pb::Register reg;
  reg.mutable_capabilities()->set_device_id("evil\"} 1\nretire_cluster_injected{x=\"y");
  reg.mutable_capabilities()->set_slots(1);
  REQUIRE(cluster.core()->RegisterWorker(reg, std::make_shared<SilentLink>()).ok());
  Http http(cluster);
  std::string id = json::parse(http.Post("/tasks", R"({"task_type":"echo"})")->body)["task_id"];
  REQUIRE(Parse(http.client.Get(("/tasks/" + id + "/wait?timeout=10").c_str()))["status"] == "success");
  auto m = http.client.Get("/metrics");
  REQUIRE(m);
  for (absl::string_view line : absl::StrSplit(m->body, '\n', absl::SkipEmpty())) {
    CHECK(line.find("retire_cluster_injected") != 0);
  }
  CHECK(m->body.find("device_id=\"evil\\\"} 1\\nretire_cluster_injected{x=\\\"y\"") != std::string::npos);

  std::string promtool = "promtool";
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    promtool = std::string(RC_TOOLS_DIR) + "/promtool";
    if (!std::filesystem::exists(promtool)) {
      WARN("SKIP promtool check: no promtool on PATH or in " RC_TOOLS_DIR " (scripts/test.sh fetches it)");
      return;
    }
  }
  const std::string file = (std::filesystem::temp_directory_path() / NewId("rc-metrics")).string();
  {
    std::ofstream out(file);
    out << m->body;
  }
  const std::string report = file + ".out";
  int rc = std::system((promtool + " check metrics < " + file + " > " + report + " 2>&1").c_str());
  std::ifstream in(report);
  std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(file);
  std::filesystem::remove(report);
  INFO(said);
  CHECK(rc == 0);
  CHECK(said.empty());  // promtool prints lint problems even when it exits 0
}

TEST_CASE("HTTP: a mission runs as python_script on a real worker and answers its MissionResult") {
  Cluster cluster;
  WorkerConfig wc = Cluster::Worker("w1", 1);
  wc.allow = {"python_script"};
  cluster.AddWorker(wc);
  Http http(cluster);
  auto ok = http.Post("/v1/missions/execute",
                      R"j({"mission_id": "calc_001", "code": "import sys\nprint(2 + 2)\nprint('note', file=sys.stderr)",
                          "requirements": [], "browser_interaction": false, "keep_alive": false,
                          "target_device_id": null, "timeout": 20, "metadata": {"who": "jarvis"}})j");
  json m = Parse(ok);
  INFO(m.dump());
  CHECK(ok->status == 200);
  CHECK(m["mission_id"] == "calc_001");
  CHECK(m["success"] == true);
  CHECK(m["stdout"] == "4\n");
  CHECK(m["stderr"] == "note\n");
  CHECK(m["exit_code"] == 0);
  CHECK(m["error"] == nullptr);
  CHECK(m["metadata"]["device_id"] == "w1");
  CHECK(m["metadata"]["status"] == "success");
  json task = Parse(http.client.Get(("/tasks/" + std::string(m["metadata"]["task_id"])).c_str()));
  CHECK(task["metadata"] == json{{"mission_id", "calc_001"}, {"who", "jarvis"}});

  auto failed = http.Post("/v1/missions/execute", R"j({"mission_id": "exit3", "code": "raise SystemExit(3)"})j");
  json f = Parse(failed);
  INFO(f.dump());
  CHECK(failed->status == 200);
  CHECK(f["success"] == false);
  CHECK(f["exit_code"] == 3);
  CHECK(f["error"].is_string());
  CHECK(f["metadata"]["attempts"] == 1);  // a mission is not retried

  auto browser = http.Post("/v1/browser/control", R"({"operation": "status"})");
  REQUIRE(browser);
  CHECK(browser->status == 503);
  CHECK(Parse(browser)["success"] == false);
}

TEST_CASE("A worker with --metrics-port serves its own Prometheus metrics") {
  Cluster cluster;
  WorkerConfig wc = Cluster::Worker("w1", 3);
  wc.metrics_port = 0;
  worker::Worker* w = cluster.AddWorker(wc);
  REQUIRE(w->metrics_port() > 0);
  auto r = cluster.client().Submit([] {
    pb::TaskSpec s;
    s.set_task_type("echo");
    return s;
  }());
  REQUIRE(cluster.client().Wait(r->task_id(), absl::Seconds(10)).ok());
  httplib::Client client("127.0.0.1", w->metrics_port());
  auto m = client.Get("/metrics");
  REQUIRE(m);
  CHECK(m->body.find("retire_cluster_worker_slots 3\n") != std::string::npos);
  CHECK(m->body.find("retire_cluster_worker_attempts_total{status=\"success\"} 1\n") != std::string::npos);
  CHECK(m->body.find("retire_cluster_worker_connected 1\n") != std::string::npos);
}

}  // namespace rc::testing
