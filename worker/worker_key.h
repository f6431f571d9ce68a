#pragma once
// The worker's Ed25519 key, which signs the outcome of every attempt it reports
// (common/result_signature.h). It lives in DATA_DIR/worker_key.pem (PKCS#8 PEM, mode
// 0600), created on the first start and kept across restarts, so a worker's identity is
// its data dir: owners pin the public key the worker logs at startup. Like ssh, a key
// file that group or others may read is refused rather than used.

#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/result_signature.h"
#include "worker/execution/executor.h"

namespace rc::worker {

constexpr char kWorkerKeyFile[] = "worker_key.pem";

// Loads DATA_DIR/worker_key.pem, or creates it (and DATA_DIR) when missing: written to a
// temporary file with mode 0600, synced, then linked into place, so a crash never leaves
// a partial key and two workers starting on one data dir end up with the same key.
// Errors name the path: FAILED_PRECONDITION when the file is readable or writable by group
// or others, or is not a regular file; INVALID_ARGUMENT when it does not hold an Ed25519
// private key; PERMISSION_DENIED / NOT_FOUND / INTERNAL from the file system.
absl::StatusOr<Ed25519Key> LoadOrCreateWorkerKey(const std::string& data_dir);

// Signs every finished event on its way to `next` (the outbox): the one place every
// outcome passes once it is final, whichever thread produced it. Started and progress
// events pass through untouched. A signing failure (OpenSSL out of memory) is logged and
// the result sent unsigned: a result is never dropped for want of a signature.
class SigningSink final : public EventSink {
 public:
  SigningSink(Ed25519Key key, std::string device_id, EventSink* next, const Clock* clock = RealClock::Get());

  void Started(pb::TaskStarted event) override { next_->Started(std::move(event)); }
  void Finished(pb::TaskFinished event) override;
  void Progress(pb::TaskProgress event) override { next_->Progress(std::move(event)); }
  void Waiting(pb::WaitingAttempts attempts) override { next_->Waiting(std::move(attempts)); }

 private:
  const Ed25519Key key_;
  const std::string device_id_;
  EventSink* const next_;
  const Clock* const clock_;
};

}  // namespace rc::worker
