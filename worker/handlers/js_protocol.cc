#include "worker/handlers/js_protocol.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rc::worker {
namespace {

using json = nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The string at `key`, or "" when absent or not a string.
std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A JSON integer (or a number with no fraction) at `key`, nullopt when absent or null.
absl::StatusOr<std::optional<int64_t>> IntegerAt(const json& j, const char* key, const std::string& field) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected an integer, got ", Dump(*it).substr(0, 64)));
}

}  // namespace

absl::StatusOr<JsPayload> ParseJsPayload(const std::string& text) {
  json j = json::parse(text.empty() ? std::string("{}") : text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("payload: expected a JSON object");
  JsPayload p;
  auto code = j.find("code");
  if (code == j.end() || code->is_null()) {
    if (j.contains("name")) {
      return absl::InvalidArgumentError(
          "payload.code: missing; the coordinator resolves payload.name to the published code, and this one did not");
    }
    return absl::InvalidArgumentError(
        "payload.code: required, the module's source (module.exports = async function execute(input, context) "
        "{...}), or payload.name of a published task");
  }
  if (!code->is_string()) return absl::InvalidArgumentError("payload.code: expected a string");
  p.code = code->get<std::string>();
  if (p.code.empty()) return absl::InvalidArgumentError("payload.code: empty");
  if (auto input = j.find("input"); input != j.end()) p.input = *input;
  absl::StatusOr<std::optional<int64_t>> memory = IntegerAt(j, "memory_mb", "payload.memory_mb");
  if (!memory.ok()) return memory.status();
  if (memory->has_value()) {
    if (**memory < kMinJsMemoryMb || **memory > kMaxJsMemoryMb) {
      return absl::InvalidArgumentError(
          absl::StrCat("payload.memory_mb: must be ", kMinJsMemoryMb, "..", kMaxJsMemoryMb, ", got ", **memory));
    }
    p.memory_mb = static_cast<int>(**memory);
  }
  auto name = j.find("name");
  if (name != j.end() && !name->is_null()) {
    if (!name->is_string() || name->get<std::string>().empty()) {
      return absl::InvalidArgumentError("payload.name: expected a non-empty string");
    }
    absl::StatusOr<std::optional<int64_t>> version = IntegerAt(j, "version", "payload.version");
    if (!version.ok()) return version.status();
    p.filename = version->has_value() ? absl::StrCat(name->get<std::string>(), "@v", **version, ".js")
                                      : absl::StrCat(name->get<std::string>(), ".js");
  }
  return p;
}

int64_t HostTimeoutMs(absl::Duration remaining) {
  constexpr int64_t kMax = 2147483647;  // node's timer limit (24.8 days), the host's maximum
  if (remaining == absl::InfiniteDuration()) return kMax;
  const int64_t ms = absl::ToInt64Milliseconds(remaining + absl::Milliseconds(250));
  return std::clamp<int64_t>(ms, 1, kMax);
}

json RunMessage(const std::string& id, const JsPayload& payload, int64_t timeout_ms) {
  return {{"op", "run"},         {"id", id},
          {"code", payload.code}, {"filename", payload.filename},
          {"input", payload.input}, {"memory_mb", payload.memory_mb},
          {"timeout_ms", timeout_ms}};
}

std::string FormatJsError(const json& error, const std::string& filename) {
  if (!error.is_object()) return absl::StrCat("thrown: ", Dump(error).substr(0, 4096));
  const std::string name = StringAt(error, "name");
  std::string message = StringAt(error, "message");
  if (message.empty() && error.contains("message") && !error["message"].is_null() && !error["message"].is_string()) {
    message = Dump(error["message"]);
  }
  std::string text = name.empty() ? message : message.empty() ? name : absl::StrCat(name, ": ", message);
  if (text.empty()) text = "Error";
  std::string stack(absl::StripTrailingAsciiWhitespace(StringAt(error, "stack")));
  // Some engines start the stack with the "Name: message" line itself.
  if (absl::StartsWith(stack, text) && (stack.size() == text.size() || stack[text.size()] == '\n')) {
    stack.erase(0, std::min(stack.size(), text.size() + 1));
  }
  if (!stack.empty()) absl::StrAppend(&text, "\n", stack);
  auto line = error.find("line"), column = error.find("column");
  if (line != error.end() && line->is_number_integer()) {
    std::string at = absl::StrCat(filename, ":", line->get<int64_t>());
    if (column != error.end() && column->is_number_integer()) absl::StrAppend(&at, ":", column->get<int64_t>());
    if (!absl::StrContains(stack, at)) absl::StrAppend(&text, "\n    at ", at);
  }
  return text;
}

JsOutcome FromDone(const json& done, const JsPayload& payload) {
  JsOutcome out;
  auto ok = done.find("ok");
  if (ok != done.end() && ok->is_boolean() && ok->get<bool>()) {
    auto result = done.find("result");
    out.result = result == done.end() ? "null" : Dump(*result);
    return out;
  }
  auto error = done.find("error");
  const std::string text = FormatJsError(error == done.end() ? json(nullptr) : *error, payload.filename);
  out.stderr = absl::StrCat(text, "\n");
  const std::string limit = StringAt(done, "limit");
  out.load_failure = limit.empty() && StringAt(done, "phase") == "load";
  if (limit == "memory") {
    out.failure = absl::ResourceExhaustedError(absl::StrCat("memory_mb (", payload.memory_mb, " MiB) exceeded: ", text));
  } else if (limit == "timeout") {
    out.failure = absl::DeadlineExceededError(absl::StrCat("timed out in the js engine: ", text));
  } else if (limit == "stack" && !absl::StrContains(text, "stack overflow")) {
    out.failure = absl::AbortedError(absl::StrCat("stack overflow: ", text));
  } else if (limit == "cancelled") {
    out.failure = absl::CancelledError(absl::StrCat("cancelled: ", text));
  } else {
    out.failure = absl::AbortedError(text);
  }
  return out;
}

}  // namespace rc::worker
