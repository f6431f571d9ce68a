// retire-cluster: submit, get, wait, cancel, list, workers, stats, tasks, run.
#include "client/cli.h"

#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cli_common.h"
#include "client/client.h"
#include "client/complete_cli.h"
#include "client/format.h"
#include "client/js_tasks_cli.h"
#include "client/verify.h"
#include "client/workflow_cli.h"
#include "common/json_view.h"
#include "common/status_macros.h"
#include "common/task_defaults.h"
#include "common/task_names.h"
#include "common/task_spec_json.h"
#include "common/tls.h"
#include "common/yaml_fields.h"

namespace rc::client {
namespace {

constexpr char kUsage[] =
    "usage: retire-cluster [--coordinator HOST:PORT] [--config FILE] <command> [flags]\n\n"
    "commands:\n"
    "  submit TYPE [--payload JSON|@FILE|-] [--priority low|normal|high|urgent]\n"
    "              [--min-cpu-cores N] [--min-memory-gb X] [--min-storage-gb X] [--gpu]\n"
    "              [--internet] [--platform P] [--role R] [--tag T]... [--device ID]\n"
    "              [--timeout S] [--max-retries N] [--idempotency-key K]\n"
    "              [--metadata KEY=VALUE]... [--after ID[:ok|any|notok]]...\n"
    "              [--parent-close cancel|abandon] [--wait] [--json]\n"
    "  get ID [--json]\n"
    "  wait ID [--timeout S] [--json]\n"
    "  cancel ID [--json]\n"
    "  verify ID [--public-key HEX|BASE64] [--json]   check the worker's signature on the result\n"
    "  list [--status S] [--type T] [--parent ID] [--limit N] [--json]\n"
    "  tree ID [--limit N] [--json]   the task and its descendants, with statuses\n"
    "  complete [ID] [--failed] [--result JSON|@FILE|-] [--error MSG] [--json]\n"
    "           completes a running task from outside, with its own token\n"
    "           ($RETIRE_CLUSTER_TOKEN; ID defaults to $RETIRE_CLUSTER_TASK_ID)\n"
    "  workers [--json]\n"
    "  drain DEVICE_ID [--undo] [--json]   (admin) no new tasks for that worker\n"
    "  stats [--json]\n"
    "  tasks publish FILE.js [--name N] [--json]   publish a JavaScript task (JSDoc @task NAME)\n"
    "  tasks list [--json]\n"
    "  tasks show NAME [--version N] [--code] [--json]   --code prints only the code\n"
    "  tasks remove NAME [--version N] [--json]   every version, or one\n"
    "  run NAME [--input JSON|@FILE|-] [--version N] [--memory-mb N] [--wait] [--json]\n"
    "           [and submit's task flags: --priority, --timeout, --tag, --after, ...]\n"
    "           runs a published task; with --wait prints its result\n\n"
    "The coordinator defaults to 127.0.0.1:8080, or $RETIRE_CLUSTER_COORDINATOR (HOST:PORT or\n"
    "unix:PATH). A coordinator with client tokens needs --token TOKEN, --token-file FILE or\n"
    "$RETIRE_CLUSTER_TOKEN. Inside a task both variables are set: a task submitted from there\n"
    "is a child of that task (it ends when its parent ends, unless --parent-close abandon).\n"
    "exit codes: 0 ok, 1 task did not succeed or other error, 2 bad usage or input,\n"
    "            3 unknown id, 4 coordinator unreachable, 5 wait timed out,\n"
    "            6 refused: no or unknown token, or a role too weak\n";

std::vector<FlagSpec> GlobalSpecs() {
  std::vector<FlagSpec> specs = {{"coordinator", "HOST:PORT", "coordinator address"},
                                 {"config", "FILE", "YAML client configuration"},
                                 {"help", "", "show this help"},
                                 {"version", "", "print the version"}};
  for (FlagSpec& s : TlsClientFlagSpecs()) specs.push_back(std::move(s));
  for (FlagSpec& s : ClientTokenFlagSpecs()) specs.push_back(std::move(s));
  return specs;
}

// `sub` is the argument after the command ("" when none): `tasks` takes flags per sub-command.
std::vector<FlagSpec> CommandSpecs(const std::string& command, const std::string& sub) {
  std::vector<FlagSpec> specs = GlobalSpecs();
  auto add = [&](FlagSpec s) { specs.push_back(std::move(s)); };
  add({"json", "", "print JSON (the HTTP bridge's shape)"});
  for (FlagSpec& s : JsTaskFlagSpecs(command, sub)) {
    // Their --version N (a task's version) replaces the global --version (print ours).
    std::erase_if(specs, [&](const FlagSpec& g) { return g.name == s.name; });
    add(std::move(s));
  }
  if (command == "submit" || command == "run") {
    if (command == "submit") add({"payload", "JSON", "payload object: inline JSON, @FILE, or - for stdin"});
    add({"priority", "P", "low, normal, high or urgent"});
    add({"min-cpu-cores", "N", ""});
    add({"min-memory-gb", "X", ""});
    add({"min-storage-gb", "X", ""});
    add({"gpu", "", "needs a GPU"});
    add({"internet", "", "needs internet access"});
    add({"platform", "P", "linux, windows, darwin or android"});
    add({"role", "R", ""});
    add({"tag", "T", "required tag", true});
    add({"device", "ID", "run only on this device"});
    add({"timeout", "S", absl::StrCat("seconds per attempt (default ", kDefaultTimeoutSeconds, ")")});
    add({"max-retries", "N", absl::StrCat("(default ", kDefaultMaxRetries, ")")});
    add({"idempotency-key", "K", ""});
    add({"metadata", "KEY=VALUE", "", true});
    add({"wait", "", "wait for the result"});
    add({"after", "ID[:ok|any|notok]", "run only after task ID ended: ok (default), any, notok", true});
    add({"parent-close", "cancel|abandon", "a child's fate when its parent ends (default cancel)"});
  } else if (command == "wait") {
    add({"timeout", "S", "give up after S seconds"});
  } else if (command == "drain") {
    add({"undo", "", "let the worker take tasks again"});
  } else if (command == "list") {
    add({"status", "S", ""});
    add({"type", "T", ""});
    add({"parent", "ID", "only the direct children of task ID"});
    add({"limit", "N", "(default 100)"});
  } else if (command == "complete") {
    for (FlagSpec& s : CompleteFlagSpecs()) add(std::move(s));
  } else if (command == "tree") {
    add({"limit", "N", "most tasks to show (default 1000)"});
  } else if (command == "verify") {
    add({"public-key", "HEX|BASE64", "the worker key expected (pinned)"});
  }
  return specs;
}

absl::Status ReadPayload(const std::string& value, std::istream& in, std::string* out) {
  if (value == "-") {
    std::ostringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
  } else if (absl::StartsWith(value, "@")) {
    RETURN_IF_ERROR(ReadFile(value.substr(1), out));
  } else {
    *out = value;
  }
  return ValidateJsonObject(*out, "--payload");
}

absl::StatusOr<pb::TaskSpec> BuildSpec(const std::string& type, const ParsedFlags& f, std::istream& in) {
  pb::TaskSpec spec;
  spec.set_task_type(type);
  if (auto v = f.Get("payload")) {
    std::string payload;
    RETURN_IF_ERROR(ReadPayload(*v, in, &payload));
    spec.set_payload(payload);
  }
  if (auto v = f.Get("priority")) {
    absl::StatusOr<pb::Priority> p = ParsePriority(*v);
    if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat("--priority: ", p.status().message()));
    spec.set_priority(*p);
  }
  pb::Requirements* r = spec.mutable_requirements();
  if (auto v = f.Get("min-cpu-cores")) {
    ASSIGN_OR_RETURN(int64_t n, FlagIntInRange("min-cpu-cores", *v, kMinCpuCoresRange.min, kMinCpuCoresRange.max));
    r->set_min_cpu_cores(static_cast<int32_t>(n));
  }
  if (auto v = f.Get("min-memory-gb")) {
    ASSIGN_OR_RETURN(double x, FlagDouble("min-memory-gb", *v));
    r->set_min_memory_gb(x);
  }
  if (auto v = f.Get("min-storage-gb")) {
    ASSIGN_OR_RETURN(double x, FlagDouble("min-storage-gb", *v));
    r->set_min_storage_gb(x);
  }
  r->set_gpu_required(f.Has("gpu"));
  r->set_internet_required(f.Has("internet"));
  if (auto v = f.Get("platform")) r->set_required_platform(*v);
  if (auto v = f.Get("role")) r->set_required_role(*v);
  for (const std::string& t : f.GetAll("tag")) r->add_required_tags(t);
  if (auto v = f.Get("device")) r->set_target_device_id(*v);
  if (auto v = f.Get("timeout")) {
    ASSIGN_OR_RETURN(double x, FlagDouble("timeout", *v));
    r->set_timeout_seconds(x);
  }
  if (auto v = f.Get("max-retries")) {
    ASSIGN_OR_RETURN(int64_t n, FlagIntInRange("max-retries", *v, kMaxRetriesRange.min, kMaxRetriesRange.max));
    r->set_max_retries(static_cast<int32_t>(n));
  }
  if (auto v = f.Get("idempotency-key")) spec.set_idempotency_key(*v);
  for (const std::string& kv : f.GetAll("metadata")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--metadata: expected KEY=VALUE, got '", kv, "'"));
    }
    (*spec.mutable_metadata())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  RETURN_IF_ERROR(ApplyWorkflowFlags(f, &spec));
  return spec;
}

// Prints the final task of a wait and returns the exit code it implies.
int PrintFinal(const pb::Task& t, bool json, std::ostream& out) {
  out << (json ? TaskToJson(t).dump(2) + "\n" : FormatTask(t));
  return t.status() == pb::TASK_STATUS_SUCCESS ? kExitOk : kExitTaskFailed;
}

int WaitAndPrint(Client& client, const std::string& id, absl::Duration timeout, bool json, std::ostream& out,
                 std::ostream& err) {
  absl::StatusOr<pb::Task> t = client.Wait(id, timeout, ShowProgress(json, err));
  if (!t.ok()) return Fail(err, t.status());
  return PrintFinal(*t, json, out);
}

int Run(const std::string& command, const ParsedFlags& f, Client& client, std::istream& in, std::ostream& out,
        std::ostream& err) {
  const bool json = f.Has("json");
  const std::vector<std::string>& pos = f.positional();
  auto need_id = [&]() -> absl::StatusOr<std::string> {
    if (pos.size() != 1) return absl::InvalidArgumentError(absl::StrCat(command, ": expected one task id"));
    return pos[0];
  };
  if (command == "verify") return RunVerify(f, client, out, err);
  if (command == "tasks") return RunJsTasksCommand(f, client, out, err);
  if (command == "run") {
    // The task flags as submit takes them; the payload comes from --input and --version.
    absl::StatusOr<pb::TaskSpec> spec = BuildSpec("js", f, in);
    if (!spec.ok()) return Fail(err, spec.status());
    return RunPublishedTask(f, *std::move(spec), client, in, out, err);
  }
  if (command == "tree") return RunTree(f, client, out, err);
  if (command == "complete") return RunComplete(f, client, in, out, err);
  if (command == "submit") {
    if (pos.size() != 1) return Fail(err, absl::InvalidArgumentError("submit: expected one TYPE, e.g. submit echo"));
    absl::StatusOr<pb::TaskSpec> spec = BuildSpec(pos[0], f, in);
    if (!spec.ok()) return Fail(err, spec.status());
    if (f.Has("wait")) {  // one call: the submit, then its task until it ends
      absl::StatusOr<pb::Task> t = client.SubmitAndWait(*spec, absl::InfiniteDuration(), ShowProgress(json, err));
      if (!t.ok()) return Fail(err, t.status());
      return PrintFinal(*t, json, out);
    }
    absl::StatusOr<pb::SubmitResponse> r = client.Submit(*spec);
    if (!r.ok()) return Fail(err, r.status());
    if (json) {
      out << Json{{"task_id", r->task_id()}, {"status", StatusName(r->status())}}.dump() << "\n";
    } else {
      out << r->task_id() << "\n";
    }
    return kExitOk;
  }
  if (command == "get" || command == "wait" || command == "cancel") {
    absl::StatusOr<std::string> id = need_id();
    if (!id.ok()) return Fail(err, id.status());
    if (command == "wait") {
      absl::Duration timeout = absl::InfiniteDuration();
      if (auto v = f.Get("timeout")) {
        absl::StatusOr<double> s = FlagDouble("timeout", *v);
        if (!s.ok()) return Fail(err, s.status());
        if (*s <= 0) return Fail(err, absl::InvalidArgumentError("--timeout: must be greater than 0"));
        timeout = absl::Seconds(*s);
      }
      return WaitAndPrint(client, *id, timeout, json, out, err);
    }
    if (command == "get") {
      absl::StatusOr<pb::Task> t = client.Get(*id);
      if (!t.ok()) return Fail(err, t.status());
      out << (json ? TaskToJson(*t).dump(2) + "\n" : FormatTask(*t));
      return kExitOk;
    }
    absl::StatusOr<pb::CancelTaskResponse> c = client.Cancel(*id);
    if (!c.ok()) return Fail(err, c.status());
    if (json) {
      out << Json{{"task_id", c->task_id()}, {"cancelled", c->cancelled()}}.dump() << "\n";
    } else if (c->cancelled()) {
      out << "cancelled " << c->task_id() << "\n";
    } else {
      out << c->task_id() << " had already finished (" << StatusName(c->status()) << "); nothing to cancel\n";
    }
    return kExitOk;
  }
  if (command == "drain") {
    if (pos.size() != 1) return Fail(err, absl::InvalidArgumentError("drain: expected one DEVICE_ID"));
    absl::StatusOr<pb::Worker> w = client.Drain(pos[0], !f.Has("undo"));
    if (!w.ok()) return Fail(err, w.status());
    if (json) {
      out << WorkerToJson(*w).dump(2) << "\n";
    } else {
      out << pos[0] << (w->drained() ? ": drained, takes no new tasks (" : ": takes tasks again (") << w->running()
          << " running)\n";
    }
    return kExitOk;
  }
  if (!pos.empty()) return Fail(err, absl::InvalidArgumentError(absl::StrCat(command, ": unexpected argument '", pos[0], "'")));
  if (command == "list") {
    pb::ListTasksRequest req;
    if (auto v = f.Get("status")) {
      absl::StatusOr<pb::TaskStatus> s = ParseStatus(*v);
      if (!s.ok()) return Fail(err, absl::InvalidArgumentError(absl::StrCat("--status: ", s.status().message())));
      req.set_status(*s);
    }
    if (auto v = f.Get("type")) req.set_task_type(*v);
    if (auto v = f.Get("parent")) req.set_parent_task_id(*v);
    if (auto v = f.Get("limit")) {
      absl::StatusOr<int64_t> n = FlagIntInRange("limit", *v, 1, 10000);
      if (!n.ok()) return Fail(err, n.status());
      req.set_limit(static_cast<int32_t>(*n));
    }
    absl::StatusOr<std::vector<pb::Task>> tasks = client.List(req);
    if (!tasks.ok()) return Fail(err, tasks.status());
    if (json) {
      Json j = {{"tasks", Json::array()}};
      for (const auto& t : *tasks) j["tasks"].push_back(TaskToJson(t));
      out << j.dump(2) << "\n";
    } else {
      out << FormatTaskTable(*tasks);
    }
    return kExitOk;
  }
  if (command == "workers") {
    absl::StatusOr<std::vector<pb::Worker>> workers = client.Workers();
    if (!workers.ok()) return Fail(err, workers.status());
    out << (json ? WorkersJson(*workers).dump(2) + "\n" : FormatWorkerTable(*workers));
    return kExitOk;
  }
  if (command == "stats") {
    absl::StatusOr<pb::Stats> stats = client.Stats();
    if (!stats.ok()) return Fail(err, stats.status());
    out << (json ? StatsToJson(*stats).dump(2) + "\n" : FormatStats(*stats));
    return kExitOk;
  }
  return Fail(err, absl::InvalidArgumentError(absl::StrCat("unknown command '", command, "' (see --help)")));
}

}  // namespace

// Prints each new unfinished status of a task to `err` (nothing when `quiet`).
std::function<void(const pb::Task&)> ShowProgress(bool quiet, std::ostream& err) {
  auto shown = std::make_shared<pb::TaskStatus>(pb::TASK_STATUS_UNSPECIFIED);
  return [quiet, &err, shown](const pb::Task& t) {
    if (quiet || t.status() == *shown || IsTerminal(t.status())) return;
    *shown = t.status();
    err << t.task_id() << ": " << StatusName(t.status());
    if (!t.unschedulable_reason().empty()) err << " (" << t.unschedulable_reason() << ")";
    if (!t.worker_device_id().empty()) err << " on " << t.worker_device_id();
    err << "\n";
  };
}


int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  size_t command_at = 0;
  absl::StatusOr<ParsedFlags> global = ParseFlags(args, 1, GlobalSpecs(), /*stop_at_positional=*/true, &command_at);
  if (!global.ok()) return Fail(err, global.status());
  if (global->Has("version")) {
    out << "retire-cluster " << RC_VERSION << "\n";
    return kExitOk;
  }
  if (global->Has("help") || command_at >= args.size()) {
    (command_at >= args.size() && !global->Has("help") ? err : out) << kUsage;
    return global->Has("help") ? kExitOk : kExitUsage;
  }
  const std::string command = args[command_at];
  const std::string sub = command_at + 1 < args.size() ? args[command_at + 1] : "";
  absl::StatusOr<ParsedFlags> flags = ParseFlags(args, command_at + 1, CommandSpecs(command, sub));
  if (!flags.ok()) return Fail(err, absl::InvalidArgumentError(absl::StrCat(command, ": ", flags.status().message())));
  if (flags->Has("help")) {
    out << kUsage;
    return kExitOk;
  }
  // Global flags may come before or after the command.
  for (const char* name : {"coordinator", "config", "tls", "tls-ca", "tls-cert", "tls-key", "token", "token-file"}) {
    if (auto v = global->Get(name); v.has_value() && !flags->Has(name)) flags->Add(name, *v);
  }
  absl::StatusOr<ClientConfig> config = LoadClientConfig(*flags);
  if (!config.ok()) return Fail(err, config.status());
  // A unix: target is a task's own socket (DESIGN.md "Workflows"): the worker serves it in
  // plaintext and forwards the calls on its own (TLS) connection.
  const bool local_socket = absl::StartsWith(config->coordinator, "unix:");
  const bool use_tls = config->use_tls && !local_socket;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeChannelCredentials(config->tls, use_tls);
  if (!creds.ok()) return Fail(err, creds.status());
  Client client(ClientOptions{config->coordinator, config->rpc_timeout, *creds, config->token,
                              use_tls && config->tls.cert.empty()});
  return Run(command, *flags, client, in, out, err);
}

}  // namespace rc::client
