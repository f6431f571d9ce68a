#pragma once
// Configuration of every binary (STYLE.md rule 16): parsed and validated once into plain
// structs with defaults. Precedence: defaults < YAML file (--config) < command-line flags.
// Errors name the file, the key (or flag) and the problem.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/tls.h"

namespace rc {

struct CoordinatorConfig {
  std::string host = "0.0.0.0";
  int port = 8080;  // 0 picks a free port (printed at startup)
  int http_port = 8081;
  // "sqlite": durable, in data_dir (default). "memory": nothing survives a restart.
  std::string store = "sqlite";
  // "" => $XDG_DATA_HOME/retire-cluster, else ~/.local/share/retire-cluster.
  std::string data_dir;
  absl::Duration heartbeat_interval = absl::Seconds(1);  // told to workers at register
  absl::Duration offline_after = absl::Seconds(5);  // no heartbeat for this long => offline
  absl::Duration reconnect_grace = absl::Seconds(2);  // stream gone this long => its tasks retry
  // After a restart: how long workers have to come back and report their attempts.
  absl::Duration restart_grace = absl::Seconds(15);
  // Retry n (n = 1, 2, ...) waits initial * 2^(n-1), capped at max, times a random
  // factor in [0.5, 1) so that retries of many tasks spread out.
  absl::Duration retry_backoff_initial = absl::Seconds(1);
  absl::Duration retry_backoff_max = absl::Seconds(60);
  absl::Duration retention = absl::Hours(24 * 7);  // finished tasks are pruned after this
  std::string log_level = "info";
  std::string log_format = "text";  // text | json (one object per line)
  // Largest task a client may submit: payload, and metadata keys plus values.
  int max_payload_bytes = 1 << 20;
  int max_metadata_bytes = 64 << 10;
  // TLS for the gRPC port (tls_cert_file, tls_key_file): plaintext when unset. With
  // tls_client_ca_file, workers and clients must present certificates it signed (mTLS).
  TlsFiles tls;
  // Tokens (common/auth.h): join_tokens from the YAML list plus join_token_file (one per
  // line); client_tokens from the YAML list plus client_tokens_file (lines "ROLE TOKEN
  // [NAME]"). The files are read by LoadCoordinatorConfig. Without join tokens workers may
  // join only from loopback; without client tokens clients may connect only from loopback.
  std::vector<std::string> join_tokens;
  std::string join_token_file;
  std::vector<std::string> client_tokens;  // "ROLE TOKEN [NAME]" lines
  std::string client_tokens_file;
  // Tasks one submitter (client token) may have waiting (queued) at once; 0 = no limit.
  int max_queued_per_token = 100000;
  // Bytes of queued payloads one named submitter may have at once; 0 = no limit.
  int64_t max_queued_bytes_per_token = int64_t{1} << 30;
  // Queued tasks' payloads held in RAM, in MiB; beyond it they stay in the store and are
  // read back at dispatch. 0 = none in RAM.
  int memory_payload_budget_mb = 192;
  // Finished tasks kept in RAM for fast reads (the rest are read from the store).
  int finished_cache_tasks = 10000;
  // The HTTP port: connections at once (total and per client address), and how long a
  // client may take to send a request's headers and body.
  int http_max_connections = 4096;
  int http_max_connections_per_address = 512;
  absl::Duration http_header_timeout = absl::Seconds(10);
  absl::Duration http_body_timeout = absl::Seconds(60);
};

struct WorkerConfig {
  std::string join = "127.0.0.1:8080";
  std::string device_id;  // "" => hostname
  std::string role = "worker";
  std::vector<std::string> tags;
  int slots = 0;  // 0 => number of CPU cores
  std::vector<std::string> allow;  // opt-in task types (dangerous handlers, plugins)
  // Limits on every process a task starts (0 = unlimited).
  int limit_address_space_mb = 4096;
  int limit_cpu_seconds = 0;
  int limit_file_size_mb = 1024;
  int limit_open_files = 1024;
  int output_cap_bytes = 1 << 20;  // per stream; the rest is dropped and marked
  // Environment variables passed from the worker to task processes (besides PATH,
  // HOME, TMPDIR and LANG, which are set for them). Nothing else leaks through.
  std::vector<std::string> pass_env;
  int venv_cache_mb = 2048;
  // python_script requirements a task may name: "names" (default: package names with
  // version specifiers only) or "any" (also local paths, URLs and VCS requirements).
  std::string python_requirements = "names";
  // Package index for python_script installs ("" = pip's default). Under containment
  // bwrap without internet, installs may reach only this host.
  std::string python_index_url;  // python_script virtualenvs kept (least recently used go first)
  // The directory holding the Python SDK (retire_cluster/), put on python_script tasks'
  // PYTHONPATH: unset (nullopt) looks beside the worker binary (worker/handlers/python_sdk.h),
  // "" turns it off, a directory must hold the SDK or the worker does not start.
  std::optional<std::string> python_sdk_dir;
  // The JavaScript engine host for `js` tasks (host.js and its node_modules): unset
  // (nullopt) looks beside the worker binary (worker/handlers/js_engine_dir.h), "" turns
  // it off; with `js` allowed, a worker without a usable one does not start.
  std::optional<std::string> js_engine_dir;
  std::string node_task_root;
  std::string plugin_dir;
  // Browser tasks (DESIGN.md "Browser automation"): the Chromium binary ("" = search PATH
  // for chromium, chromium-browser, google-chrome) and the X display for headful browsers
  // (":99"; "" = headless only). The display is explicit only, never taken from the
  // worker's $DISPLAY: a worker started from a desktop session must not open windows there
  // unasked.
  std::string chromium_path;
  std::string display;
  std::string data_dir = "/tmp/retire-cluster-worker";  // free disk is measured here
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration reconnect_initial = absl::Milliseconds(200);
  absl::Duration reconnect_max = absl::Seconds(10);
  // On SIGTERM: take no new tasks, let running ones finish for up to this long, then
  // hand the rest back to the coordinator and leave.
  absl::Duration drain_grace = absl::Seconds(30);
  // Internet reachability: "" reports internet = `internet`; "host:port" probes it with
  // a TCP connect (2 s timeout) at start and on every reconnect.
  bool internet = false;
  std::string internet_check;
  // TLS to the coordinator: on with `tls: true` or a tls_ca_file (the authority that
  // signed the coordinator's certificate; the system's when unset); tls_cert_file and
  // tls_key_file are this worker's certificate, for a coordinator that requires one.
  bool use_tls = false;
  TlsFiles tls;
  // The join token presented to the coordinator (token_file: its first line). Never logged.
  std::string token;
  std::string token_file;
  // Only tasks submitted with these client-token names run here (empty = anyone's).
  std::vector<std::string> accept_submitters;
  // How task processes are contained: "process" (rlimits, own process group) or "bwrap"
  // (bubblewrap: read-only root, private /tmp and task dir, new namespaces, no network
  // unless the task needs internet). An unavailable tier fails startup.
  std::string containment = "process";
  // cgroup limits per task, at either tier, where the machine lets the worker use the
  // controller (worker/process/cgroups.h; missing ones are logged, not fatal). 0 = no limit.
  int cgroup_memory_mb = 0;
  int cgroup_pids_max = 1024;
  int cgroup_cpu_percent = 0;  // 100 = one core
  std::string log_level = "info";
  std::string log_format = "text";  // text | json (one object per line)
  int metrics_port = -1;  // -1: no metrics endpoint; 0 picks a free port
  std::string metrics_host = "127.0.0.1";
};

struct ClientConfig {
  std::string coordinator = "127.0.0.1:8080";
  absl::Duration rpc_timeout = absl::Seconds(10);  // per unary RPC
  bool use_tls = false;  // as for WorkerConfig
  TlsFiles tls;
  // Bearer token (YAML token or token_file, then $RETIRE_CLUSTER_TOKEN, then --token or
  // --token-file). "" sends none. Never logged.
  std::string token;
};

// Flags each binary accepts in addition to --help, --version and --config.
std::vector<FlagSpec> CoordinatorFlagSpecs();
std::vector<FlagSpec> WorkerFlagSpecs();
// TLS to the coordinator, shared by the worker, both CLIs and the bench: --tls, --tls-ca,
// --tls-cert, --tls-key.
std::vector<FlagSpec> TlsClientFlagSpecs();
// --token and --token-file, for both CLIs and the bench (LoadClientConfig reads them).
std::vector<FlagSpec> ClientTokenFlagSpecs();
// The bearer token: $RETIRE_CLUSTER_TOKEN, then --token, then --token-file, over *token.
absl::Status ApplyClientTokenFlags(const ParsedFlags& f, std::string* token);
// Applies those flags over *use_tls and *tls (a CA file turns TLS on). INVALID_ARGUMENT
// when a certificate comes without its key or the other way round.
absl::Status ApplyTlsClientFlags(const ParsedFlags& f, bool* use_tls, TlsFiles* tls);

// Defaults, then the YAML file named by --config (if any), then flags, then Validate.
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const ParsedFlags& flags);
absl::StatusOr<WorkerConfig> LoadWorkerConfig(const ParsedFlags& flags);
// For the CLI: file from --config, then $RETIRE_CLUSTER_COORDINATOR, then --coordinator.
absl::StatusOr<ClientConfig> LoadClientConfig(const ParsedFlags& flags);

// YAML text -> struct (defaults for absent keys). INVALID_ARGUMENT names `source`, the
// key and the problem; unknown keys are errors (a typo must not be silently ignored).
absl::StatusOr<CoordinatorConfig> ParseCoordinatorYaml(const std::string& text, const std::string& source);
absl::StatusOr<WorkerConfig> ParseWorkerYaml(const std::string& text, const std::string& source);
absl::StatusOr<ClientConfig> ParseClientYaml(const std::string& text, const std::string& source);

absl::Status Validate(const CoordinatorConfig& c);
// Where the coordinator keeps state when no data_dir is given.
std::string DefaultDataDir();
absl::Status Validate(const WorkerConfig& c);

// "host:port" -> OK, or INVALID_ARGUMENT naming `what`.
absl::Status ValidateAddress(absl::string_view what, absl::string_view address);
// A client's coordinator: HOST:PORT as above, or unix:PATH (a task's socket).
absl::Status ValidateClientTarget(absl::string_view what, absl::string_view target);

}  // namespace rc
