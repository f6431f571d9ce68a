#pragma once
// `retire-cluster verify ID`: checks that a finished task's stored outcome is the one its
// worker signed (common/result_signature.h), with the key the coordinator recorded when
// that worker joined, and that this key is still the one the worker presents and, when
// given, the one the user pinned. The coordinator is not trusted: everything is
// recomputed here from the stored task alone (for a result signed in a batch, its leaf
// and its proof up to the signed root; no other task of the batch is needed).

#include <iosfwd>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "common/flags.h"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::client {

struct VerifiedResult {
  std::string worker_device_id;
  int32_t attempt = 0;
  int64_t signed_at_ms = 0;
  std::string public_key;  // raw 32 bytes
};

// Pure. `current`: the worker as ListWorkers shows it now (null when unknown there);
// `pinned`: a raw public key the user expects. Errors (each message says why):
//   FAILED_PRECONDITION  the task is not finished, or has no signature or recorded key
//   DATA_LOSS            the stored outcome is not what was signed
//   PERMISSION_DENIED    the signature does not match the recorded key, the inclusion
//                        proof of a batch signature does not lead from this task to the
//                        signed root, or that key is not the one pinned or the one the
//                        worker presents now
//   INVALID_ARGUMENT     the signature does not belong to the task's own attempt or worker
absl::StatusOr<VerifiedResult> VerifyTask(const pb::Task& task, const pb::Worker* current,
                                          const std::optional<std::string>& pinned);

// The command: positional ID, --public-key HEX|BASE64, --json. Returns the exit code:
// 0 verified, 1 not verified, 2 bad usage, 3 unknown task, 4 coordinator unreachable.
int RunVerify(const ParsedFlags& flags, Client& client, std::ostream& out, std::ostream& err);

}  // namespace rc::client
