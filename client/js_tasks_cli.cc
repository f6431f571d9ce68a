#include "client/js_tasks_cli.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/cli_common.h"
#include "client/format.h"
#include "common/clock.h"
#include "common/js_task_json.h"
#include "common/task_names.h"

namespace rc::client {
namespace {

using nlohmann::json;

constexpr int32_t kMaxVersion = 2147483647;
constexpr size_t kDescriptionColumn = 60;  // `tasks list` cuts longer first lines

// A file the user named, read whole. INVALID_ARGUMENT "WHAT: cannot read PATH: reason":
// the input is what is wrong, not a task or a token.
absl::StatusOr<std::string> ReadUserFile(const std::string& what, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path, ": it is a directory"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << file.rdbuf();
  if (file.bad()) return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path));
  return ss.str();
}

absl::StatusOr<int> VersionFlag(const ParsedFlags& f) {
  std::optional<std::string> v = f.Get("version");
  if (!v.has_value()) return 0;
  absl::StatusOr<int64_t> n = FlagIntInRange("version", *v, 1, kMaxVersion);
  if (!n.ok()) return n.status();
  return static_cast<int>(*n);
}

void Line(std::string* out, absl::string_view key, const std::string& value) {
  if (value.empty()) return;
  absl::StrAppendFormat(out, "%-14s %s\n", absl::StrCat(key, ":"), value);
}

std::string FirstLine(const std::string& text) {
  std::string line(text.substr(0, text.find('\n')));
  if (line.size() > kDescriptionColumn) line = absl::StrCat(line.substr(0, kDescriptionColumn - 3), "...");
  return line;
}

int Publish(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  const std::vector<std::string>& pos = f.positional();
  if (pos.size() != 2) return Fail(err, absl::InvalidArgumentError("tasks publish: expected one FILE.js"));
  absl::StatusOr<std::string> code = ReadUserFile("tasks publish", pos[1]);
  if (!code.ok()) return Fail(err, code.status());
  absl::StatusOr<pb::PublishJsTaskResponse> r = client.PublishJsTask(*code, f.Get("name").value_or(""));
  if (!r.ok()) return Fail(err, r.status());
  const pb::JsTask& t = r->task();
  if (f.Has("json")) {
    out << PublishJsTaskJson(*r).dump(2) << "\n";
  } else if (r->unchanged()) {
    out << t.name() << ": unchanged, version " << t.version() << " has this code (sha256 " << t.sha256() << ")\n";
  } else {
    out << "published " << t.name() << " version " << t.version() << " (sha256 " << t.sha256() << ")\n";
  }
  return kExitOk;
}

int List(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  if (f.positional().size() != 1) {
    return Fail(err, absl::InvalidArgumentError(absl::StrCat("tasks list: unexpected argument '", f.positional()[1], "'")));
  }
  absl::StatusOr<std::vector<pb::JsTask>> tasks = client.ListJsTasks();
  if (!tasks.ok()) return Fail(err, tasks.status());
  out << (f.Has("json") ? JsTaskListJson(*tasks).dump(2) + "\n" : FormatJsTaskTable(*tasks));
  return kExitOk;
}

int Show(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  if (f.positional().size() != 2) return Fail(err, absl::InvalidArgumentError("tasks show: expected one NAME"));
  absl::StatusOr<int> version = VersionFlag(f);
  if (!version.ok()) return Fail(err, version.status());
  absl::StatusOr<pb::JsTask> t = client.GetJsTask(f.positional()[1], *version);
  if (!t.ok()) return Fail(err, t.status());
  if (f.Has("json")) {
    out << JsTaskToJson(*t).dump(2) << "\n";
  } else if (f.Has("code")) {
    out << t->code();  // as published, byte for byte: `tasks show x --code > x.js`
  } else {
    out << FormatJsTask(*t);
  }
  return kExitOk;
}

int Remove(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  if (f.positional().size() != 2) return Fail(err, absl::InvalidArgumentError("tasks remove: expected one NAME"));
  absl::StatusOr<int> version = VersionFlag(f);
  if (!version.ok()) return Fail(err, version.status());
  const std::string& name = f.positional()[1];
  absl::StatusOr<pb::RemoveJsTaskResponse> r = client.RemoveJsTask(name, *version);
  if (!r.ok()) return Fail(err, r.status());
  if (f.Has("json")) {
    out << Json{{"removed_versions", r->removed_versions()}}.dump() << "\n";
  } else if (*version > 0) {
    out << "removed " << name << " version " << *version << "\n";
  } else {
    out << "removed " << name << " (" << r->removed_versions() << (r->removed_versions() == 1 ? " version" : " versions")
        << ")\n";
  }
  return kExitOk;
}

}  // namespace

std::vector<FlagSpec> JsTaskFlagSpecs(const std::string& command, const std::string& sub) {
  std::vector<FlagSpec> specs;
  if (command == "run") {
    specs.push_back({"input", "JSON", "the task's input: inline JSON, @FILE, or - for stdin (default {})"});
    specs.push_back({"version", "N", "run this version (default: the latest)"});
    specs.push_back({"memory-mb", "N", "the task's memory limit in MiB (1..2048, default 64)"});
  } else if (command == "tasks") {
    if (sub == "publish") specs.push_back({"name", "N", "publish under this name (default: the JSDoc @task)"});
    if (sub == "show" || sub == "remove") specs.push_back({"version", "N", "one version (default: the latest; remove: all)"});
    if (sub == "show") specs.push_back({"code", "", "print only the code, as published"});
  }
  return specs;
}

absl::StatusOr<json> ReadInputFlag(const std::string& value, std::istream& in) {
  std::string text;
  std::string source;
  if (value == "-") {
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    source = " (from stdin)";
  } else if (absl::StartsWith(value, "@")) {
    absl::StatusOr<std::string> file = ReadUserFile("--input", value.substr(1));
    if (!file.ok()) return file.status();
    text = *std::move(file);
    source = absl::StrCat(" (", value.substr(1), ")");
  } else {
    text = value;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("--input", source, " is not valid JSON"));
  return j;
}

int RunJsTasksCommand(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  const std::vector<std::string>& pos = f.positional();
  const std::string sub = pos.empty() ? "" : pos[0];
  if (sub == "publish") return Publish(f, client, out, err);
  if (sub == "list") return List(f, client, out, err);
  if (sub == "show") return Show(f, client, out, err);
  if (sub == "remove") return Remove(f, client, out, err);
  return Fail(err, absl::InvalidArgumentError(
                       sub.empty() ? "tasks: expected publish, list, show or remove"
                                   : absl::StrCat("tasks: unknown sub-command '", sub, "' (publish, list, show or remove)")));
}

int RunPublishedTask(const ParsedFlags& f, pb::TaskSpec spec, Client& client, std::istream& in, std::ostream& out,
                     std::ostream& err) {
  const bool json_out = f.Has("json");
  if (f.positional().size() != 1) return Fail(err, absl::InvalidArgumentError("run: expected one published task NAME"));
  const std::string& name = f.positional()[0];
  json input = json::object();
  if (auto v = f.Get("input")) {
    absl::StatusOr<json> parsed = ReadInputFlag(*v, in);
    if (!parsed.ok()) return Fail(err, parsed.status());
    input = *std::move(parsed);
  }
  absl::StatusOr<int> version = VersionFlag(f);
  if (!version.ok()) return Fail(err, version.status());
  json extra = json::object();
  if (auto v = f.Get("memory-mb")) {
    absl::StatusOr<int64_t> mb = FlagIntInRange("memory-mb", *v, 1, 2048);
    if (!mb.ok()) return Fail(err, mb.status());
    extra["memory_mb"] = *mb;
  }
  absl::StatusOr<std::string> payload = JsRunPayload(name, *version, input, "--input", extra);
  if (!payload.ok()) return Fail(err, payload.status());
  spec.set_task_type("js");
  spec.set_payload(*std::move(payload));
  if (!f.Has("wait")) {
    absl::StatusOr<pb::SubmitResponse> r = client.Submit(spec);
    if (!r.ok()) return Fail(err, r.status());
    if (json_out) {
      out << Json{{"task_id", r->task_id()}, {"status", StatusName(r->status())}}.dump() << "\n";
    } else {
      out << r->task_id() << "\n";
    }
    return kExitOk;
  }
  absl::StatusOr<pb::Task> t = client.SubmitAndWait(spec, absl::InfiniteDuration(), ShowProgress(json_out, err));
  if (!t.ok()) return Fail(err, t.status());
  const bool ok = t->status() == pb::TASK_STATUS_SUCCESS;
  if (json_out) {
    out << TaskToJson(*t).dump(2) << "\n";
  } else if (ok) {
    out << (t->result().empty() ? Json(nullptr) : ParseOrString(t->result())).dump(2) << "\n";
  } else {
    // The JS error and its stack are in the task's error message and stderr.
    err << "error: task " << t->task_id() << " (" << name << ") ended " << StatusName(t->status());
    if (!t->error_message().empty()) err << ": " << t->error_message();
    err << "\n";
    if (!t->stderr().empty() && !absl::StrContains(t->error_message(), t->stderr())) err << t->stderr() << "\n";
  }
  return ok ? kExitOk : kExitTaskFailed;
}

std::string FormatJsTask(const pb::JsTask& t) {
  std::string out;
  Line(&out, "name", t.name());
  Line(&out, "version", t.versions() > 0 ? absl::StrCat(t.version(), " (", t.versions(), " stored)")
                                         : absl::StrCat(t.version()));
  Line(&out, "owner", t.owner());
  Line(&out, "sha256", t.sha256());
  Line(&out, "code_bytes", absl::StrCat(t.code_bytes()));
  Line(&out, "created_at", t.created_at_ms() > 0 ? FormatTimeMs(t.created_at_ms()) : "");
  if (!t.description().empty()) {
    absl::StrAppend(&out, "description:\n");
    for (absl::string_view line : absl::StrSplit(t.description(), '\n')) absl::StrAppend(&out, "  ", line, "\n");
  }
  if (t.params_size() > 0) {
    absl::StrAppend(&out, "params:\n");
    std::vector<std::vector<std::string>> rows;
    for (const pb::JsTaskParam& p : t.params()) {
      rows.push_back({absl::StrCat("  ", p.optional() ? absl::StrCat("[", p.name(), "]") : p.name()),
                      p.type().empty() ? "" : absl::StrCat("{", p.type(), "}"), p.description()});
    }
    absl::StrAppend(&out, FormatTable(rows));
  }
  Line(&out, "returns", t.returns());
  return out;
}

std::string FormatJsTaskTable(const std::vector<pb::JsTask>& tasks) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "VERSION", "VERSIONS", "OWNER", "DESCRIPTION"}};
  for (const pb::JsTask& t : tasks) {
    rows.push_back({t.name(), absl::StrCat(t.version()), absl::StrCat(t.versions()), t.owner().empty() ? "-" : t.owner(),
                    FirstLine(t.description())});
  }
  return FormatTable(rows);
}

}  // namespace rc::client
