#pragma once
// The CLI's published JavaScript tasks (DESIGN.md "JavaScript tasks"):
//   tasks publish FILE.js [--name N] [--json]
//   tasks list [--json]
//   tasks show NAME [--version N] [--code] [--json]
//   tasks remove NAME [--version N] [--json]
//   run NAME [--input JSON|@FILE|-] [--version N] [--memory-mb N] [--wait] [task flags] [--json]
// --json prints what the HTTP bridge answers for the same question (common/js_task_json.h).

#include <iosfwd>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/flags.h"
#include "nlohmann/json.hpp"

namespace rc::client {

// The flags of `tasks SUB` (`sub` is its first argument, "" when none) and of `run`,
// beyond the global ones and --json; `run` also takes submit's task flags (BuildSpec).
std::vector<FlagSpec> JsTaskFlagSpecs(const std::string& command, const std::string& sub);

// `tasks ...`: the sub-command is f.positional()[0].
int RunJsTasksCommand(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err);

// `run NAME`: `spec` holds the task flags already parsed (priority, timeout, tags, ...);
// its payload is built here from --input, --version and --memory-mb.
int RunPublishedTask(const ParsedFlags& f, pb::TaskSpec spec, Client& client, std::istream& in, std::ostream& out,
                     std::ostream& err);

// `--input` as JSON: inline text, @FILE, or - for standard input; INVALID_ARGUMENT
// naming --input (and the file) when it cannot be read or is not JSON. Any JSON value.
absl::StatusOr<nlohmann::json> ReadInputFlag(const std::string& value, std::istream& in);

// `tasks show` without --json: "key: value" lines, the description and params below.
std::string FormatJsTask(const pb::JsTask& task);
// `tasks list`: NAME VERSION VERSIONS OWNER DESCRIPTION (its first line).
std::string FormatJsTaskTable(const std::vector<pb::JsTask>& tasks);

}  // namespace rc::client
