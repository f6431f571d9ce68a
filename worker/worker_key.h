#pragma once
// The worker's Ed25519 key, which signs the outcome of every attempt it reports
// (common/result_signature.h), and the signer that uses it. It lives in DATA_DIR/worker_key.pem (PKCS#8 PEM, mode
// 0600), created on the first start and kept across restarts, so a worker's identity is
// its data dir: owners pin the public key the worker logs at startup. Like ssh, a key
// file that group or others may read is refused rather than used.

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "common/result_signature.h"
#include "retire_cluster/v1/worker_service.pb.h"

namespace rc::worker {

constexpr char kWorkerKeyFile[] = "worker_key.pem";

// Loads DATA_DIR/worker_key.pem, or creates it (and DATA_DIR) when missing: written to a
// temporary file with mode 0600, synced, then linked into place, so a crash never leaves
// a partial key and two workers starting on one data dir end up with the same key.
// Errors name the path: FAILED_PRECONDITION when the file is readable or writable by group
// or others, or is not a regular file; INVALID_ARGUMENT when it does not hold an Ed25519
// private key; PERMISSION_DENIED / NOT_FOUND / INTERNAL from the file system.
absl::StatusOr<Ed25519Key> LoadOrCreateWorkerKey(const std::string& data_dir);

// Signs the results the outbox sends, one batch per stream message (Outbox::Take): one
// Ed25519 signature over the batch's Merkle root, each result with its inclusion proof
// (common/result_signature.h). It runs on the session's sending thread, not on the one
// that ran the task, and costs one signature per message however many results it
// carries. A signing failure (OpenSSL out of memory) is logged and the batch sent
// unsigned: a result is never dropped for want of a signature. Thread-safe.
class ResultSigner {
 public:
  ResultSigner(Ed25519Key key, std::string device_id, const Clock* clock = RealClock::Get());
  ~ResultSigner();

  // Signs `batch` (fills in each event's signature); nothing when it is empty.
  void SignBatch(absl::Span<pb::TaskFinished* const> batch);

  // Batches signed and the results in them, since start (logged when destroyed).
  int64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  int64_t results() const { return results_.load(std::memory_order_relaxed); }

 private:
  const Ed25519Key key_;
  const std::string device_id_;
  const Clock* const clock_;
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> results_{0};
};

}  // namespace rc::worker
