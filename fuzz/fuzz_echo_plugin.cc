// A plugin for fuzz_plugin_output: its result is its payload, byte for byte, so the
// fuzzer controls exactly what the worker's LibraryPlugin handler has to parse.
#include "worker/plugin_abi.h"

namespace {
int Run(const rc_call* call) {
  call->set_result(call, call->payload, call->payload_len);
  return 0;
}
}  // namespace

extern "C" int rc_plugin_abi_version(void) { return RC_PLUGIN_ABI_VERSION; }
extern "C" int rc_plugin_register(rc_registrar* r) {
  r->add(r, "fuzz_echo", Run);
  return 0;
}
