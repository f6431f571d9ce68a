// Output of plugins and payloads of handlers, on the worker. A shared-library plugin's
// result goes through the worker's real LibraryPlugin handler (worker/plugins.cc, loaded
// by ScanPlugins from a plugin that returns its payload as its result, so the fuzz input
// is the plugin's output); the same bytes go through Payload (worker/payload.cc), the
// typed payload access of every built-in handler.
// Invariants beyond "no crash": a result the handler accepts is the input's JSON value,
// printed canonically; one it refuses is DATA_LOSS; no exception escapes; payload errors
// are INVALID_ARGUMENT naming the field, and Seconds() returns only positive finite values.
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "fuzz/fuzz_check.h"
#include "nlohmann/json.hpp"
#include "worker/payload.h"
#include "worker/plugins.h"

namespace {

using nlohmann::json;
using rc::worker::Payload;

rc::worker::Handler* Plugin() {
  static rc::worker::PluginScan* scan = [] {
    absl::StatusOr<rc::worker::PluginScan> s = rc::worker::ScanPlugins(RC_FUZZ_PLUGIN_DIR, {});
    RC_FUZZ_CHECK(s.ok() && s->handlers.count("fuzz_echo") == 1, "cannot load the fuzz_echo plugin from " RC_FUZZ_PLUGIN_DIR);
    return new rc::worker::PluginScan(std::move(*s));
  }();
  return scan->handlers.at("fuzz_echo").get();
}

void CheckPluginResult(const std::string& text) {
  static const rc::worker::StopToken never(absl::InfiniteFuture());
  rc::worker::TaskContext ctx;
  ctx.task_id = "task-fuzz";
  ctx.attempt = 1;
  ctx.payload = text;
  ctx.stop = &never;
  absl::StatusOr<rc::worker::HandlerOutput> out = Plugin()->Run(ctx);
  json expected = json::parse(text, nullptr, false);
  if (expected.is_discarded()) {
    RC_FUZZ_CHECK(!out.ok() && out.status().code() == absl::StatusCode::kDataLoss, "plugin result not JSON, not refused");
    return;
  }
  RC_FUZZ_CHECK(out.ok(), "a JSON plugin result was refused");
  RC_FUZZ_CHECK(out->result == expected.dump(), "the stored result is not the plugin's JSON value");
}

void CheckStatus(const absl::Status& s, const std::string& key) {
  if (s.ok()) return;
  RC_FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "payload error that is not INVALID_ARGUMENT");
  RC_FUZZ_CHECK(absl::StartsWith(s.message(), "payload." + key), "payload error that does not name the field");
}

void CheckPayload(const std::string& text) {
  absl::StatusOr<Payload> p = Payload::Parse(text);
  json j = json::parse(text.empty() ? "{}" : text, nullptr, false);
  RC_FUZZ_CHECK(p.ok() == (!j.is_discarded() && j.is_object()), "Payload::Parse accepts exactly JSON objects");
  if (!p.ok()) return;
  std::vector<std::string> keys = {"timeout", "command", "argv", "env"};
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  for (const std::string& key : keys) {
    (void)p->Has(key);
    CheckStatus(p->String(key).status(), key);
    CheckStatus(p->Number(key).status(), key);
    CheckStatus(p->Bool(key).status(), key);
    CheckStatus(p->StringArray(key).status(), key);
    CheckStatus(p->StringMap(key).status(), key);
    absl::StatusOr<std::optional<double>> seconds = p->Seconds(key);
    CheckStatus(seconds.status(), key);
    if (seconds.ok() && seconds->has_value()) {
      RC_FUZZ_CHECK(**seconds > 0 && std::isfinite(**seconds), "Seconds() returned a value that is not > 0");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckPluginResult(text);
  CheckPayload(text);
  return 0;
}
