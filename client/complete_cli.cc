#include "client/complete_cli.h"

#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/cli_common.h"
#include "common/json_view.h"
#include "common/yaml_fields.h"

namespace rc::client {

std::vector<FlagSpec> CompleteFlagSpecs() {
  return {{"failed", "", "complete it as failed (default: success)"},
          {"result", "JSON", "the result object: inline JSON, @FILE, or - for stdin (default {})"},
          {"error", "MSG", "why it failed (with --failed)"}};
}

namespace {

absl::Status ReadResult(const std::string& value, std::istream& in, std::string* out) {
  if (value == "-") {
    std::ostringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
  } else if (absl::StartsWith(value, "@")) {
    if (absl::Status read = ReadFile(value.substr(1), out); !read.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--result: ", read.message()));
    }
  } else {
    *out = value;
  }
  return ValidateJsonObject(*out, "--result");
}

}  // namespace

int RunComplete(const ParsedFlags& f, Client& client, std::istream& in, std::ostream& out, std::ostream& err) {
  const std::vector<std::string>& pos = f.positional();
  if (pos.size() > 1) return Fail(err, absl::InvalidArgumentError("complete: expected at most one task id"));
  const std::string id = pos.empty() ? CurrentTaskId() : pos[0];
  if (id.empty()) {
    return Fail(err, absl::InvalidArgumentError(
                         "complete: expected a task id (or run it inside the task: $RETIRE_CLUSTER_TASK_ID)"));
  }
  const bool failed = f.Has("failed");
  std::string result;
  if (auto v = f.Get("result")) {
    if (absl::Status s = ReadResult(*v, in, &result); !s.ok()) return Fail(err, s);
  }
  std::string error;
  if (auto v = f.Get("error")) {
    if (!failed) return Fail(err, absl::InvalidArgumentError("--error: only with --failed"));
    error = *v;
  }
  absl::StatusOr<pb::CompleteTaskResponse> r =
      client.CompleteTask(id, failed ? pb::TASK_STATUS_FAILED : pb::TASK_STATUS_SUCCESS, result, error);
  if (!r.ok()) return Fail(err, r.status());
  if (f.Has("json")) {
    out << Json{{"task_id", r->task_id()}, {"attempt", r->attempt()}, {"accepted", true}}.dump() << "\n";
  } else {
    out << "completion of " << r->task_id() << " (attempt " << r->attempt() << ", " << (failed ? "failed" : "success")
        << ") handed to its worker\n";
  }
  return kExitOk;
}

}  // namespace rc::client
