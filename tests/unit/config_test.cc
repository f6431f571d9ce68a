#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "common/config.h"
#include "common/yaml_fields.h"

namespace rc {
namespace {

std::string Message(const absl::Status& s) { return std::string(s.message()); }

ParsedFlags Parse(std::vector<std::string> args, const std::vector<FlagSpec>& specs) {
  args.insert(args.begin(), "prog");
  auto f = ParseFlags(args, 1, specs);
  REQUIRE(f.ok());
  return *f;
}

}  // namespace

TEST_CASE("Coordinator config: defaults, file values, validation naming the key") {
  auto c = ParseCoordinatorYaml("", "main.yaml");
  REQUIRE(c.ok());
  CHECK(c->port == 8080);
  CHECK(c->http_port == 8081);
  CHECK(c->offline_after == absl::Seconds(5));

  c = ParseCoordinatorYaml("port: 9000\nheartbeat_interval_seconds: 0.5\nretention_hours: 1.5\nstore: memory\n",
                           "main.yaml");
  REQUIRE(c.ok());
  CHECK(c->port == 9000);
  CHECK(c->heartbeat_interval == absl::Milliseconds(500));
  CHECK(c->retention == absl::Minutes(90));
  CHECK(c->store == "memory");

  CHECK(Message(ParseCoordinatorYaml("store: disk\n", "main.yaml").status()) ==
        "main.yaml: store: unknown store 'disk' (sqlite or memory)");
  CHECK(Message(ParseCoordinatorYaml("retry_backoff_initial_seconds: 5\nretry_backoff_max_seconds: 1\n", "m.yaml")
                    .status()) == "m.yaml: retry_backoff_max_seconds: must be at least retry_backoff_initial_seconds");
  CHECK(Message(ParseCoordinatorYaml("retention_hours: soon\n", "m.yaml").status()) ==
        "m.yaml: key 'retention_hours': expected a number, got 'soon'");

  c = ParseCoordinatorYaml("max_payload_bytes: 2048\n", "main.yaml");
  REQUIRE(c.ok());
  CHECK(c->max_payload_bytes == 2048);
  CHECK(Message(ParseCoordinatorYaml("max_payload_bytes: 0\n", "m.yaml").status()) ==
        "m.yaml: max_payload_bytes: must be 2..33554432, got 0");

  c = ParseCoordinatorYaml("port: abc\n", "main.yaml");
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(c.status()) == "main.yaml: key 'port': expected an integer, got 'abc'");
  // Out of the field's range: refused, never truncated to 32 bits.
  c = ParseCoordinatorYaml("max_queued_per_token: 4294967301\n", "main.yaml");
  CHECK(Message(c.status()) ==
        "main.yaml: key 'max_queued_per_token': out of range (-2147483648..2147483647), got '4294967301'");
  c = ParseCoordinatorYaml("max_queued_bytes_per_token: 4294967301\n", "main.yaml");
  REQUIRE(c.ok());
  CHECK(c->max_queued_bytes_per_token == 4294967301);

  c = ParseCoordinatorYaml("prot: 9000\n", "main.yaml");
  CHECK(Message(c.status()) == "main.yaml: key 'prot': unknown key");

  c = ParseCoordinatorYaml("port: 70000\n", "main.yaml");
  CHECK(Message(c.status()) == "main.yaml: port: must be 0..65535, got 70000");

  c = ParseCoordinatorYaml("heartbeat_interval_seconds: 10\n", "main.yaml");
  CHECK(Message(c.status()) == "main.yaml: offline_after_seconds: must be longer than heartbeat_interval_seconds");

  c = ParseCoordinatorYaml("port: [1, 2\n", "main.yaml");
  CHECK(Message(c.status()).rfind("main.yaml: not valid YAML", 0) == 0);

  c = ParseCoordinatorYaml("- a\n- b\n", "main.yaml");
  CHECK(Message(c.status()) == "main.yaml: expected a mapping of key: value");
}

TEST_CASE("Worker config: lists, booleans and invalid values") {
  auto w = ParseWorkerYaml("join: 10.0.0.1:8080\ntags: [a, b]\nslots: 4\ninternet: true\n", "worker.yaml");
  REQUIRE(w.ok());
  CHECK(w->join == "10.0.0.1:8080");
  CHECK(w->tags == std::vector<std::string>{"a", "b"});
  CHECK(w->slots == 4);
  CHECK(w->internet);

  CHECK(Message(ParseWorkerYaml("join: nowhere\n", "w.yaml").status()) ==
        "w.yaml: join: expected HOST:PORT, got 'nowhere'");
  CHECK(Message(ParseWorkerYaml("tags: a\n", "w.yaml").status()) == "w.yaml: key 'tags': expected a list, e.g. [a, b]");
  CHECK(Message(ParseWorkerYaml("internet: maybe\n", "w.yaml").status()) ==
        "w.yaml: key 'internet': expected true or false, got 'maybe'");
  CHECK(Message(ParseWorkerYaml("slots: -1\n", "w.yaml").status()) == "w.yaml: slots: must be 1..4096, got -1");
  CHECK(Message(ParseWorkerYaml("log_level: loud\n", "w.yaml").status()) ==
        "w.yaml: log_level: unknown level 'loud' (trace, debug, info, warn, error, off)");
}

TEST_CASE("Flags override the YAML file") {
  const std::string path = "/tmp/rc_config_test_worker.yaml";
  {
    std::ofstream out(path);
    out << "join: 127.0.0.1:9000\nslots: 3\nrole: storage\n";
  }
  std::vector<FlagSpec> specs = WorkerFlagSpecs();
  specs.push_back({"config", "FILE", ""});
  auto w = LoadWorkerConfig(Parse({"--config", path, "--slots", "5", "--tags", "x,y"}, specs));
  REQUIRE(w.ok());
  CHECK(w->join == "127.0.0.1:9000");
  CHECK(w->slots == 5);
  CHECK(w->role == "storage");
  CHECK(w->tags == std::vector<std::string>{"x", "y"});

  auto bad = LoadWorkerConfig(Parse({"--slots", "many"}, specs));
  CHECK(Message(bad.status()) == "--slots: expected an integer, got 'many'");

  auto missing = LoadWorkerConfig(Parse({"--config", "/nonexistent/w.yaml"}, specs));
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK(Message(missing.status()).find("/nonexistent/w.yaml") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("Client config takes the environment, then the flag") {
  std::vector<FlagSpec> specs = {{"coordinator", "HOST:PORT", ""}, {"config", "FILE", ""}};
  setenv("RETIRE_CLUSTER_COORDINATOR", "10.1.1.1:7000", 1);
  auto c = LoadClientConfig(Parse({}, specs));
  REQUIRE(c.ok());
  CHECK(c->coordinator == "10.1.1.1:7000");
  c = LoadClientConfig(Parse({"--coordinator", "127.0.0.1:1234"}, specs));
  CHECK(c->coordinator == "127.0.0.1:1234");
  unsetenv("RETIRE_CLUSTER_COORDINATOR");
  c = LoadClientConfig(Parse({"--coordinator", "localhost"}, specs));
  CHECK(Message(c.status()) == "coordinator: expected HOST:PORT, got 'localhost'");
}

}  // namespace rc

namespace rc {

TEST_CASE("The commented examples in deploy/ are valid configurations") {
  const std::string dir = std::string(RC_SOURCE_DIR) + "/deploy/";
  std::string text;
  REQUIRE(ReadFile(dir + "main.yaml", &text).ok());
  auto main = ParseCoordinatorYaml(text, "main.yaml");
  INFO(main.status().ToString());
  CHECK(main.ok());
  REQUIRE(ReadFile(dir + "worker.yaml", &text).ok());
  auto worker = ParseWorkerYaml(text, "worker.yaml");
  INFO(worker.status().ToString());
  CHECK(worker.ok());
  REQUIRE(ReadFile(dir + "client.yaml", &text).ok());
  CHECK(ParseClientYaml(text, "client.yaml").ok());
}

TEST_CASE("TLS settings: a CA file turns TLS on, certificate and key go together") {
  auto w = ParseWorkerYaml("tls_ca_file: /etc/ca.pem\n", "worker.yaml");
  REQUIRE(w.ok());
  CHECK(w->use_tls);
  CHECK(w->tls.ca == "/etc/ca.pem");
  CHECK(Message(ParseWorkerYaml("tls_cert_file: /etc/c.pem\n", "worker.yaml").status()) ==
        "worker.yaml: tls_cert_file: set together with tls_key_file");
  auto c = ParseCoordinatorYaml("tls_cert_file: /s.pem\ntls_key_file: /s.key\ntls_client_ca_file: /ca.pem\n", "m.yaml");
  REQUIRE(c.ok());
  CHECK(c->tls.ca == "/ca.pem");
  CHECK(Message(ParseCoordinatorYaml("tls_client_ca_file: /ca.pem\n", "m.yaml").status()) ==
        "m.yaml: tls_client_ca_file: needs tls_cert_file and tls_key_file (client certificates need TLS)");
}

}  // namespace rc
