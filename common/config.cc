#include "common/config.h"

#include <cstdlib>
#include <filesystem>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"

namespace rc {
namespace {

absl::Status Bad(absl::string_view what, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", problem));
}

absl::Status ValidateLogLevel(absl::string_view level) {
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"}) {
    if (level == ok) return absl::OkStatus();
  }
  return Bad("log_level", absl::StrCat("unknown level '", level, "' (trace, debug, info, warn, error, off)"));
}

absl::Status ValidateLogFormat(absl::string_view format) {
  if (format == "text" || format == "json") return absl::OkStatus();
  return Bad("log_format", absl::StrCat("unknown format '", format, "' (text or json)"));
}

absl::Status ValidatePositive(absl::string_view what, absl::Duration d) {
  if (d <= absl::ZeroDuration()) return Bad(what, "must be greater than 0 seconds");
  return absl::OkStatus();
}

// Reads the file named by --config through `parse`, or returns `defaults`.
template <typename Config, typename ParseFn>
absl::StatusOr<Config> FromFile(const ParsedFlags& flags, ParseFn parse) {
  std::optional<std::string> path = flags.Get("config");
  if (!path.has_value()) return Config{};
  std::string text;
  RETURN_IF_ERROR(ReadFile(*path, &text));
  return parse(text, *path);
}

absl::Status SetInt(const ParsedFlags& f, absl::string_view name, int* out) {
  if (std::optional<std::string> v = f.Get(name)) {
    // Range-checked before narrowing: --port 4294975488 must not become 8192.
    ASSIGN_OR_RETURN(int64_t n, FlagIntInRange(name, *v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
    *out = static_cast<int>(n);
  }
  return absl::OkStatus();
}

void SetString(const ParsedFlags& f, absl::string_view name, std::string* out) {
  if (std::optional<std::string> v = f.Get(name)) *out = *v;
}

}  // namespace

absl::Status ValidateClientTarget(absl::string_view what, absl::string_view target) {
  // A task's own socket (DESIGN.md "Workflows": RETIRE_CLUSTER_COORDINATOR=unix:PATH).
  if (absl::StartsWith(target, "unix:")) {
    if (target.size() == 5) return Bad(what, "expected unix:PATH, got 'unix:' with no path");
    return absl::OkStatus();
  }
  return ValidateAddress(what, target);
}

absl::Status ValidateAddress(absl::string_view what, absl::string_view address) {
  size_t colon = address.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return Bad(what, absl::StrCat("expected HOST:PORT, got '", address, "'"));
  }
  return absl::OkStatus();
}

std::vector<FlagSpec> CoordinatorFlagSpecs() {
  return {
      {"host", "ADDR", "address to listen on (default 0.0.0.0)"},
      {"port", "PORT", "gRPC port (default 8080; 0 picks a free one)"},
      {"http-port", "PORT", "HTTP/JSON bridge port (default 8081; 0 picks a free one)"},
      {"data-dir", "DIR", "state directory (default ~/.local/share/retire-cluster)"},
      {"store", "KIND", "sqlite (durable, default) or memory (lost on restart)"},
      {"log-level", "LEVEL", "trace|debug|info|warn|error|off (default info)"},
      {"log-format", "FORMAT", "text (default) or json: one JSON object per line"},
      {"tls-cert", "FILE", "serve gRPC over TLS with this certificate (PEM)"},
      {"tls-key", "FILE", "the certificate's private key (PEM)"},
      {"tls-client-ca", "FILE", "require client certificates signed by this CA (mTLS)"},
      {"join-token-file", "FILE", "tokens workers must present, one per line"},
      {"client-tokens-file", "FILE", "client tokens, lines \"ROLE TOKEN [NAME]\" (ROLE: submit, read, admin)"},
  };
}

std::vector<FlagSpec> WorkerFlagSpecs() {
  std::vector<FlagSpec> specs = {
      {"join", "HOST:PORT", "coordinator to join (default 127.0.0.1:8080)"},
      {"device-id", "ID", "stable worker identity (default: hostname)"},
      {"role", "ROLE", "worker, compute, storage, mobile, ... (default worker)"},
      {"tags", "A,B", "comma-separated tags"},
      {"slots", "N", "tasks run at once (default: CPU cores)"},
      {"allow", "TYPE,...", "opt-in task types (dangerous handlers, plugins)"},
      {"node-task-root", "DIR", "root for node_task directories"},
      {"plugin-dir", "DIR", "directory of plugins"},
      {"python-sdk-dir", "DIR",
       "Python SDK (holding retire_cluster/) for python_script tasks' PYTHONPATH (default: found beside "
       "this binary; \"\" turns it off)"},
      {"js-engine-dir", "DIR",
       "JavaScript engine host (host.js, node_modules) for js tasks (default: found beside this binary)"},
      {"data-dir", "DIR", "worker state directory (default /tmp/retire-cluster-worker)"},
      {"chromium", "PATH", "Chromium for browser tasks (default: chromium on PATH)"},
      {"display", ":N", "X display for headful browser tasks (default: none, headless only)"},
      {"metrics-port", "PORT", "serve Prometheus /metrics on 127.0.0.1:PORT (0 picks a free one)"},
      {"token-file", "FILE", "join token to present to the coordinator (first line of FILE)"},
      {"accept-submitters", "NAME,...", "run only tasks of these submitters (client token names)"},
      {"containment", "TIER", "process (default) or bwrap: how task processes are contained"},
      {"log-level", "LEVEL", "trace|debug|info|warn|error|off (default info)"},
      {"log-format", "FORMAT", "text (default) or json: one JSON object per line"},
  };
  for (FlagSpec& s : TlsClientFlagSpecs()) specs.push_back(std::move(s));
  return specs;
}

// TLS to the coordinator in a worker's or client's YAML: tls, tls_ca_file, tls_cert_file,
// tls_key_file (a CA file turns TLS on).
absl::Status ReadTlsClientYaml(YamlFields& y, bool* use_tls, TlsFiles* tls) {
  RETURN_IF_ERROR(y.Read("tls", use_tls));
  RETURN_IF_ERROR(y.Read("tls_ca_file", &tls->ca));
  RETURN_IF_ERROR(y.Read("tls_cert_file", &tls->cert));
  RETURN_IF_ERROR(y.Read("tls_key_file", &tls->key));
  if (!tls->ca.empty()) *use_tls = true;
  return absl::OkStatus();
}

std::vector<FlagSpec> TlsClientFlagSpecs() {
  return {
      {"tls", "", "connect with TLS, verifying the coordinator against the system's CAs"},
      {"tls-ca", "FILE", "connect with TLS, verifying the coordinator against this CA (PEM)"},
      {"tls-cert", "FILE", "client certificate (PEM), for a coordinator that requires one"},
      {"tls-key", "FILE", "its private key (PEM)"},
  };
}

std::vector<FlagSpec> ClientTokenFlagSpecs() {
  return {
      {"token", "TOKEN", "bearer token for the coordinator (default $RETIRE_CLUSTER_TOKEN)"},
      {"token-file", "FILE", "read the bearer token from FILE (its first line)"},
  };
}

absl::Status ApplyClientTokenFlags(const ParsedFlags& f, std::string* token) {
  if (const char* env = std::getenv("RETIRE_CLUSTER_TOKEN"); env != nullptr && *env != '\0') *token = env;
  SetString(f, "token", token);
  if (std::optional<std::string> file = f.Get("token-file")) {
    ASSIGN_OR_RETURN(*token, ReadTokenFile(*file));
  }
  if (!token->empty()) RETURN_IF_ERROR(ValidateToken("token", *token));
  return absl::OkStatus();
}

absl::Status ApplyTlsClientFlags(const ParsedFlags& f, bool* use_tls, TlsFiles* tls) {
  if (f.Has("tls")) *use_tls = true;
  SetString(f, "tls-ca", &tls->ca);
  SetString(f, "tls-cert", &tls->cert);
  SetString(f, "tls-key", &tls->key);
  if (!tls->ca.empty()) *use_tls = true;
  if (tls->cert.empty() != tls->key.empty()) return Bad("tls_cert_file", "set together with tls_key_file");
  return absl::OkStatus();
}

absl::StatusOr<CoordinatorConfig> ParseCoordinatorYaml(const std::string& text, const std::string& source) {
  CoordinatorConfig c;
  YamlFields y;
  RETURN_IF_ERROR(YamlFields::Parse(text, source, &y));
  RETURN_IF_ERROR(y.Read("host", &c.host));
  RETURN_IF_ERROR(y.Read("port", &c.port));
  RETURN_IF_ERROR(y.Read("http_port", &c.http_port));
  RETURN_IF_ERROR(y.Read("store", &c.store));
  RETURN_IF_ERROR(y.Read("data_dir", &c.data_dir));
  RETURN_IF_ERROR(y.ReadSeconds("heartbeat_interval_seconds", &c.heartbeat_interval));
  RETURN_IF_ERROR(y.ReadSeconds("offline_after_seconds", &c.offline_after));
  RETURN_IF_ERROR(y.ReadSeconds("reconnect_grace_seconds", &c.reconnect_grace));
  RETURN_IF_ERROR(y.ReadSeconds("restart_grace_seconds", &c.restart_grace));
  RETURN_IF_ERROR(y.ReadSeconds("retry_backoff_initial_seconds", &c.retry_backoff_initial));
  RETURN_IF_ERROR(y.ReadSeconds("retry_backoff_max_seconds", &c.retry_backoff_max));
  double retention_hours = absl::ToDoubleHours(c.retention);
  RETURN_IF_ERROR(y.ReadNumber("retention_hours", &retention_hours));
  c.retention = absl::Hours(retention_hours);
  RETURN_IF_ERROR(y.Read("log_level", &c.log_level));
  RETURN_IF_ERROR(y.Read("log_format", &c.log_format));
  RETURN_IF_ERROR(y.Read("max_payload_bytes", &c.max_payload_bytes));
  RETURN_IF_ERROR(y.Read("max_metadata_bytes", &c.max_metadata_bytes));
  RETURN_IF_ERROR(y.Read("tls_cert_file", &c.tls.cert));
  RETURN_IF_ERROR(y.Read("tls_key_file", &c.tls.key));
  RETURN_IF_ERROR(y.Read("tls_client_ca_file", &c.tls.ca));
  RETURN_IF_ERROR(y.Read("join_tokens", &c.join_tokens));
  RETURN_IF_ERROR(y.Read("join_token_file", &c.join_token_file));
  RETURN_IF_ERROR(y.Read("client_tokens", &c.client_tokens));
  RETURN_IF_ERROR(y.Read("client_tokens_file", &c.client_tokens_file));
  RETURN_IF_ERROR(y.Read("max_queued_per_token", &c.max_queued_per_token));
  RETURN_IF_ERROR(y.Read("max_queued_bytes_per_token", &c.max_queued_bytes_per_token));
  RETURN_IF_ERROR(y.Read("memory_payload_budget_mb", &c.memory_payload_budget_mb));
  RETURN_IF_ERROR(y.Read("finished_cache_tasks", &c.finished_cache_tasks));
  RETURN_IF_ERROR(y.Read("http_max_connections", &c.http_max_connections));
  RETURN_IF_ERROR(y.Read("http_max_connections_per_address", &c.http_max_connections_per_address));
  RETURN_IF_ERROR(y.ReadSeconds("http_header_timeout_seconds", &c.http_header_timeout));
  RETURN_IF_ERROR(y.ReadSeconds("http_body_timeout_seconds", &c.http_body_timeout));
  RETURN_IF_ERROR(y.CheckNoUnknownKeys());
  if (absl::Status s = Validate(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return c;
}

absl::StatusOr<WorkerConfig> ParseWorkerYaml(const std::string& text, const std::string& source) {
  WorkerConfig c;
  YamlFields y;
  RETURN_IF_ERROR(YamlFields::Parse(text, source, &y));
  RETURN_IF_ERROR(y.Read("join", &c.join));
  RETURN_IF_ERROR(y.Read("device_id", &c.device_id));
  RETURN_IF_ERROR(y.Read("role", &c.role));
  RETURN_IF_ERROR(y.Read("tags", &c.tags));
  RETURN_IF_ERROR(y.Read("slots", &c.slots));
  RETURN_IF_ERROR(y.Read("allow", &c.allow));
  RETURN_IF_ERROR(y.Read("limit_address_space_mb", &c.limit_address_space_mb));
  RETURN_IF_ERROR(y.Read("limit_cpu_seconds", &c.limit_cpu_seconds));
  RETURN_IF_ERROR(y.Read("limit_file_size_mb", &c.limit_file_size_mb));
  RETURN_IF_ERROR(y.Read("limit_open_files", &c.limit_open_files));
  RETURN_IF_ERROR(y.Read("output_cap_bytes", &c.output_cap_bytes));
  RETURN_IF_ERROR(y.Read("pass_env", &c.pass_env));
  RETURN_IF_ERROR(y.Read("venv_cache_mb", &c.venv_cache_mb));
  RETURN_IF_ERROR(y.Read("python_requirements", &c.python_requirements));
  RETURN_IF_ERROR(y.Read("python_index_url", &c.python_index_url));
  RETURN_IF_ERROR(y.Read("python_sdk_dir", &c.python_sdk_dir));
  RETURN_IF_ERROR(y.Read("js_engine_dir", &c.js_engine_dir));
  RETURN_IF_ERROR(y.Read("metrics_port", &c.metrics_port));
  RETURN_IF_ERROR(y.Read("metrics_host", &c.metrics_host));
  RETURN_IF_ERROR(y.Read("node_task_root", &c.node_task_root));
  RETURN_IF_ERROR(y.Read("plugin_dir", &c.plugin_dir));
  RETURN_IF_ERROR(y.Read("chromium_path", &c.chromium_path));
  RETURN_IF_ERROR(y.Read("display", &c.display));
  RETURN_IF_ERROR(y.Read("data_dir", &c.data_dir));
  RETURN_IF_ERROR(y.ReadSeconds("heartbeat_interval_seconds", &c.heartbeat_interval));
  RETURN_IF_ERROR(y.ReadSeconds("reconnect_initial_seconds", &c.reconnect_initial));
  RETURN_IF_ERROR(y.ReadSeconds("reconnect_max_seconds", &c.reconnect_max));
  RETURN_IF_ERROR(y.ReadSeconds("drain_grace_seconds", &c.drain_grace));
  RETURN_IF_ERROR(y.Read("internet", &c.internet));
  RETURN_IF_ERROR(y.Read("internet_check", &c.internet_check));
  RETURN_IF_ERROR(ReadTlsClientYaml(y, &c.use_tls, &c.tls));
  RETURN_IF_ERROR(y.Read("token", &c.token));
  RETURN_IF_ERROR(y.Read("token_file", &c.token_file));
  RETURN_IF_ERROR(y.Read("accept_submitters", &c.accept_submitters));
  RETURN_IF_ERROR(y.Read("containment", &c.containment));
  RETURN_IF_ERROR(y.Read("cgroup_memory_mb", &c.cgroup_memory_mb));
  RETURN_IF_ERROR(y.Read("cgroup_pids_max", &c.cgroup_pids_max));
  RETURN_IF_ERROR(y.Read("cgroup_cpu_percent", &c.cgroup_cpu_percent));
  RETURN_IF_ERROR(y.Read("log_level", &c.log_level));
  RETURN_IF_ERROR(y.Read("log_format", &c.log_format));
  RETURN_IF_ERROR(y.CheckNoUnknownKeys());
  if (absl::Status s = Validate(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return c;
}

absl::StatusOr<ClientConfig> ParseClientYaml(const std::string& text, const std::string& source) {
  ClientConfig c;
  YamlFields y;
  RETURN_IF_ERROR(YamlFields::Parse(text, source, &y));
  RETURN_IF_ERROR(y.Read("coordinator", &c.coordinator));
  RETURN_IF_ERROR(y.ReadSeconds("rpc_timeout_seconds", &c.rpc_timeout));
  RETURN_IF_ERROR(ReadTlsClientYaml(y, &c.use_tls, &c.tls));
  RETURN_IF_ERROR(y.Read("token", &c.token));
  std::string token_file;
  RETURN_IF_ERROR(y.Read("token_file", &token_file));
  RETURN_IF_ERROR(y.CheckNoUnknownKeys());
  if (!token_file.empty()) {
    ASSIGN_OR_RETURN(c.token, ReadTokenFile(token_file));
  }
  if (absl::Status s = ValidateClientTarget("coordinator", c.coordinator); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  if (c.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": key 'rpc_timeout_seconds': must be greater than 0"));
  }
  return c;
}

absl::Status Validate(const CoordinatorConfig& c) {
  if (c.host.empty()) return Bad("host", "must not be empty");
  if (c.port < 0 || c.port > 65535) return Bad("port", absl::StrCat("must be 0..65535, got ", c.port));
  if (c.http_port < 0 || c.http_port > 65535) {
    return Bad("http_port", absl::StrCat("must be 0..65535, got ", c.http_port));
  }
  RETURN_IF_ERROR(ValidatePositive("heartbeat_interval_seconds", c.heartbeat_interval));
  RETURN_IF_ERROR(ValidatePositive("offline_after_seconds", c.offline_after));
  RETURN_IF_ERROR(ValidatePositive("reconnect_grace_seconds", c.reconnect_grace));
  RETURN_IF_ERROR(ValidatePositive("restart_grace_seconds", c.restart_grace));
  RETURN_IF_ERROR(ValidatePositive("retry_backoff_initial_seconds", c.retry_backoff_initial));
  RETURN_IF_ERROR(ValidatePositive("retention_hours", c.retention));
  if (c.tls.cert.empty() != c.tls.key.empty()) return Bad("tls_cert_file", "set together with tls_key_file");
  if (!c.tls.ca.empty() && c.tls.cert.empty()) {
    return Bad("tls_client_ca_file", "needs tls_cert_file and tls_key_file (client certificates need TLS)");
  }
  // The gRPC server takes messages up to 64 MiB, and a task must fit in one.
  if (c.max_payload_bytes < 2 || c.max_payload_bytes > (32 << 20)) {
    return Bad("max_payload_bytes", absl::StrCat("must be 2..", 32 << 20, ", got ", c.max_payload_bytes));
  }
  if (c.max_metadata_bytes < 0 || c.max_metadata_bytes > (16 << 20)) {
    return Bad("max_metadata_bytes", absl::StrCat("must be 0..", 16 << 20, ", got ", c.max_metadata_bytes));
  }
  if (c.retry_backoff_max < c.retry_backoff_initial) {
    return Bad("retry_backoff_max_seconds", "must be at least retry_backoff_initial_seconds");
  }
  if (c.max_queued_per_token < 0) {
    return Bad("max_queued_per_token", absl::StrCat("must be >= 0 (0 = no limit), got ", c.max_queued_per_token));
  }
  if (c.max_queued_bytes_per_token < 0) {
    return Bad("max_queued_bytes_per_token",
               absl::StrCat("must be >= 0 (0 = no limit), got ", c.max_queued_bytes_per_token));
  }
  if (c.memory_payload_budget_mb < 0) {
    return Bad("memory_payload_budget_mb", absl::StrCat("must be >= 0, got ", c.memory_payload_budget_mb));
  }
  if (c.finished_cache_tasks < 0) {
    return Bad("finished_cache_tasks", absl::StrCat("must be >= 0, got ", c.finished_cache_tasks));
  }
  if (c.http_max_connections < 1) {
    return Bad("http_max_connections", absl::StrCat("must be >= 1, got ", c.http_max_connections));
  }
  if (c.http_max_connections_per_address < 1) {
    return Bad("http_max_connections_per_address",
               absl::StrCat("must be >= 1, got ", c.http_max_connections_per_address));
  }
  if (c.http_header_timeout <= absl::ZeroDuration()) return Bad("http_header_timeout_seconds", "must be > 0");
  if (c.http_body_timeout <= absl::ZeroDuration()) return Bad("http_body_timeout_seconds", "must be > 0");
  for (const std::string& t : c.join_tokens) RETURN_IF_ERROR(ValidateToken("join_tokens", t));
  for (const std::string& line : c.client_tokens) {
    if (absl::StatusOr<ClientToken> t = ParseClientTokenLine(line); !t.ok()) {
      return Bad("client_tokens", t.status().message());
    }
  }
  if (c.store != "sqlite" && c.store != "memory") {
    return Bad("store", absl::StrCat("unknown store '", c.store, "' (sqlite or memory)"));
  }
  if (c.offline_after <= c.heartbeat_interval) {
    return Bad("offline_after_seconds", "must be longer than heartbeat_interval_seconds");
  }
  RETURN_IF_ERROR(ValidateLogFormat(c.log_format));
  return ValidateLogLevel(c.log_level);
}

absl::Status Validate(const WorkerConfig& c) {
  RETURN_IF_ERROR(ValidateAddress("join", c.join));
  if (c.tls.cert.empty() != c.tls.key.empty()) return Bad("tls_cert_file", "set together with tls_key_file");
  if (c.role.empty()) return Bad("role", "must not be empty");
  for (const std::string& t : c.tags) {
    if (t.empty() || t.find_first_of(", \t") != std::string::npos) {
      return Bad("tags", absl::StrCat("tag '", t, "' must be non-empty without commas or spaces"));
    }
  }
  if (c.slots < 0 || c.slots > 4096) return Bad("slots", absl::StrCat("must be 1..4096, got ", c.slots));
  RETURN_IF_ERROR(ValidatePositive("heartbeat_interval_seconds", c.heartbeat_interval));
  RETURN_IF_ERROR(ValidatePositive("reconnect_initial_seconds", c.reconnect_initial));
  if (c.reconnect_max < c.reconnect_initial) {
    return Bad("reconnect_max_seconds", "must be at least reconnect_initial_seconds");
  }
  if (c.drain_grace < absl::ZeroDuration()) return Bad("drain_grace_seconds", "must be >= 0");
  for (auto [name, value] : {std::pair{"limit_address_space_mb", c.limit_address_space_mb},
                             {"limit_cpu_seconds", c.limit_cpu_seconds},
                             {"limit_file_size_mb", c.limit_file_size_mb},
                             {"limit_open_files", c.limit_open_files}}) {
    if (value < 0) return Bad(name, absl::StrCat("must be >= 0 (0 = unlimited), got ", value));
  }
  if (c.output_cap_bytes < 1024) return Bad("output_cap_bytes", "must be at least 1024");
  if (c.venv_cache_mb < 0) return Bad("venv_cache_mb", "must be >= 0 (0 = no limit)");
  if (c.python_requirements != "names" && c.python_requirements != "any") {
    return Bad("python_requirements", absl::StrCat("unknown value '", c.python_requirements, "' (names or any)"));
  }
  if (c.metrics_port < -1 || c.metrics_port > 65535) {
    return Bad("metrics_port", absl::StrCat("must be -1 (off) or 0..65535, got ", c.metrics_port));
  }
  if (!c.internet_check.empty()) RETURN_IF_ERROR(ValidateAddress("internet_check", c.internet_check));
  if (!c.token.empty()) RETURN_IF_ERROR(ValidateToken("token", c.token));
  if (c.containment != "process" && c.containment != "bwrap") {
    return Bad("containment", absl::StrCat("unknown tier '", c.containment, "' (process or bwrap)"));
  }
  for (auto [name, value] : {std::pair{"cgroup_memory_mb", c.cgroup_memory_mb},
                             {"cgroup_pids_max", c.cgroup_pids_max},
                             {"cgroup_cpu_percent", c.cgroup_cpu_percent}}) {
    if (value < 0) return Bad(name, absl::StrCat("must be >= 0 (0 = no limit), got ", value));
  }
  for (const std::string& s : c.accept_submitters) {
    if (s.empty()) return Bad("accept_submitters", "names must not be empty");
  }
  if (!c.display.empty() && (c.display.find(':') == std::string::npos ||
                             c.display.find_first_of(" \t\n=") != std::string::npos)) {
    return Bad("display", absl::StrCat("'", c.display, "' is not an X display (:N or HOST:N)"));
  }
  RETURN_IF_ERROR(ValidateLogFormat(c.log_format));
  return ValidateLogLevel(c.log_level);
}

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const ParsedFlags& f) {
  ASSIGN_OR_RETURN(CoordinatorConfig c, FromFile<CoordinatorConfig>(f, ParseCoordinatorYaml));
  SetString(f, "host", &c.host);
  RETURN_IF_ERROR(SetInt(f, "port", &c.port));
  RETURN_IF_ERROR(SetInt(f, "http-port", &c.http_port));
  SetString(f, "data-dir", &c.data_dir);
  SetString(f, "store", &c.store);
  SetString(f, "log-level", &c.log_level);
  SetString(f, "log-format", &c.log_format);
  SetString(f, "tls-cert", &c.tls.cert);
  SetString(f, "tls-key", &c.tls.key);
  SetString(f, "tls-client-ca", &c.tls.ca);
  SetString(f, "join-token-file", &c.join_token_file);
  SetString(f, "client-tokens-file", &c.client_tokens_file);
  if (c.data_dir.empty()) c.data_dir = DefaultDataDir();
  if (!c.join_token_file.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadTokenLines(c.join_token_file));
    for (std::string& l : lines) c.join_tokens.push_back(std::move(l));
  }
  if (!c.client_tokens_file.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadTokenLines(c.client_tokens_file));
    for (std::string& l : lines) {
      if (absl::StatusOr<ClientToken> t = ParseClientTokenLine(l); !t.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(c.client_tokens_file, ": ", t.status().message()));
      }
      c.client_tokens.push_back(std::move(l));
    }
  }
  RETURN_IF_ERROR(Validate(c));
  return c;
}

std::string DefaultDataDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/retire-cluster");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return absl::StrCat(home, "/.local/share/retire-cluster");
  }
  return "retire-cluster-data";
}

absl::StatusOr<WorkerConfig> LoadWorkerConfig(const ParsedFlags& f) {
  ASSIGN_OR_RETURN(WorkerConfig c, FromFile<WorkerConfig>(f, ParseWorkerYaml));
  SetString(f, "join", &c.join);
  SetString(f, "device-id", &c.device_id);
  SetString(f, "role", &c.role);
  if (auto v = f.Get("tags")) c.tags = SplitList(*v);
  RETURN_IF_ERROR(SetInt(f, "slots", &c.slots));
  if (auto v = f.Get("allow")) c.allow = SplitList(*v);
  SetString(f, "node-task-root", &c.node_task_root);
  RETURN_IF_ERROR(SetInt(f, "metrics-port", &c.metrics_port));
  SetString(f, "plugin-dir", &c.plugin_dir);
  if (std::optional<std::string> v = f.Get("python-sdk-dir")) c.python_sdk_dir = *v;  // "" turns it off
  if (std::optional<std::string> v = f.Get("js-engine-dir")) c.js_engine_dir = *v;  // "" turns it off
  SetString(f, "data-dir", &c.data_dir);
  SetString(f, "chromium", &c.chromium_path);
  SetString(f, "display", &c.display);
  SetString(f, "log-level", &c.log_level);
  SetString(f, "log-format", &c.log_format);
  SetString(f, "token-file", &c.token_file);
  if (auto v = f.Get("accept-submitters")) c.accept_submitters = SplitList(*v);
  SetString(f, "containment", &c.containment);
  RETURN_IF_ERROR(ApplyTlsClientFlags(f, &c.use_tls, &c.tls));
  if (!c.token_file.empty()) {
    ASSIGN_OR_RETURN(c.token, ReadTokenFile(c.token_file));
  }
  RETURN_IF_ERROR(Validate(c));
  // Absolute, so that task processes (which run elsewhere) find them.
  for (std::string* dir : {&c.data_dir, &c.plugin_dir, &c.node_task_root, &c.chromium_path}) {
    if (!dir->empty()) *dir = std::filesystem::absolute(*dir).lexically_normal().string();
  }
  for (std::optional<std::string>* dir : {&c.python_sdk_dir, &c.js_engine_dir}) {
    if (dir->has_value() && !(*dir)->empty()) *dir = std::filesystem::absolute(**dir).lexically_normal().string();
  }
  return c;
}

absl::StatusOr<ClientConfig> LoadClientConfig(const ParsedFlags& f) {
  ASSIGN_OR_RETURN(ClientConfig c, FromFile<ClientConfig>(f, ParseClientYaml));
  if (const char* env = std::getenv("RETIRE_CLUSTER_COORDINATOR"); env != nullptr && *env != '\0') {
    c.coordinator = env;
  }
  SetString(f, "coordinator", &c.coordinator);
  RETURN_IF_ERROR(ValidateClientTarget("coordinator", c.coordinator));
  RETURN_IF_ERROR(ApplyTlsClientFlags(f, &c.use_tls, &c.tls));
  RETURN_IF_ERROR(ApplyClientTokenFlags(f, &c.token));
  return c;
}

}  // namespace rc
