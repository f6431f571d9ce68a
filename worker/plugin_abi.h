/* The C ABI of retire-cluster shared-library plugins, version 1.
 *
 * A plugin is a shared object in the worker's --plugin-dir that exports:
 *
 *   int rc_plugin_abi_version(void);            returns RC_PLUGIN_ABI_VERSION it was built with
 *   int rc_plugin_register(rc_registrar* r);    calls r->add(r, "type", run) once per task type;
 *                                               returns 0, or non-zero to refuse loading
 *
 * A worker refuses (with a log line naming the file) a plugin whose ABI version differs
 * from its own. Plugin types run only where --allow names them, like every opt-in type.
 *
 * run() is called on a worker slot thread, possibly several at once (one per running
 * task), and must be thread-safe. It reads the payload (a JSON object, not
 * NUL-terminated), reports through the call's functions, and returns 0 for success or
 * non-zero for failure. It should poll should_stop() and return soon once it is true
 * (cancel or timeout). Strings passed to set_result/set_error are copied. */
#ifndef RETIRE_CLUSTER_PLUGIN_ABI_H_
#define RETIRE_CLUSTER_PLUGIN_ABI_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_PLUGIN_ABI_VERSION 1

typedef struct rc_call {
  const char* payload;
  size_t payload_len;
  void* host;                                                          /* opaque */
  int (*should_stop)(const struct rc_call* call);                      /* 1 once cancelled or timed out */
  void (*set_result)(const struct rc_call* call, const char* json, size_t len); /* a JSON value */
  void (*set_error)(const struct rc_call* call, const char* message);
} rc_call;

typedef int (*rc_run_fn)(const rc_call* call);

typedef struct rc_registrar {
  void* host; /* opaque */
  void (*add)(struct rc_registrar* registrar, const char* task_type, rc_run_fn run);
} rc_registrar;

#ifdef __cplusplus
}
#endif

#endif /* RETIRE_CLUSTER_PLUGIN_ABI_H_ */
