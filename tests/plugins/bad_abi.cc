// A plugin built for another ABI version: a worker must refuse it.
#include "worker/plugin_abi.h"

extern "C" {
__attribute__((visibility("default"))) int rc_plugin_abi_version(void) { return RC_PLUGIN_ABI_VERSION + 98; }
__attribute__((visibility("default"))) int rc_plugin_register(rc_registrar*) { return 0; }
}
