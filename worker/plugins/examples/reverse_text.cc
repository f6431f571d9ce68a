// A shared-library plugin (C ABI, worker/plugin_abi.h): task type `reverse_text`.
// Payload {"text": "..."} -> {"reversed": "..."}. Copy the .so into a worker's
// --plugin-dir and start the worker with --allow reverse_text.
#include <string>

#include "nlohmann/json.hpp"
#include "worker/plugin_abi.h"

namespace {

int Reverse(const rc_call* call) {
  nlohmann::json payload = nlohmann::json::parse(call->payload, call->payload + call->payload_len, nullptr, false);
  if (payload.is_discarded() || !payload.contains("text") || !payload["text"].is_string()) {
    call->set_error(call, "payload.text: required, a string");
    return 1;
  }
  std::string text = payload["text"];
  std::string reversed(text.rbegin(), text.rend());
  if (call->should_stop(call)) return 2;
  const std::string result = nlohmann::json{{"reversed", reversed}}.dump();
  call->set_result(call, result.data(), result.size());
  return 0;
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) int rc_plugin_abi_version(void) { return RC_PLUGIN_ABI_VERSION; }
__attribute__((visibility("default"))) int rc_plugin_register(rc_registrar* registrar) {
  registrar->add(registrar, "reverse_text", Reverse);
  return 0;
}
}
