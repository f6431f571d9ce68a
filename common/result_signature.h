#pragma once
// Signed results (issue 6, batched in issue 18): each worker signs the outcome of every
// attempt it reports with its Ed25519 key; the coordinator stores the signature beside
// the result, with the public key it recorded when that worker joined; `retire-cluster
// verify ID` recomputes everything below from the stored task and checks the signature.
// The design assumption: the coordinator and its database are not trusted with results;
// a worker's key is (it never leaves the worker's data dir).
//
// Exactly what is signed. Every field below is ENCODED as an 8-byte big-endian byte
// length followed by the bytes, so no field can be shifted into its neighbour; integers
// are written as decimal ASCII ("-" for negatives, no leading zeros).
//
//   outcome digest = lowercase hex SHA-256 of
//       Field(status name: "success" | "failed" | "cancelled" | "timeout" | ...)
//       Field(result)  Field(error_message)  Field(decimal exit_code)
//       Field(stdout)  Field(stderr)
//
// Batches (issue 18; what workers sign now). The worker signs once per stream message:
// the finished events of one WorkerMessage form a batch of n >= 1 results, in message
// order, and each result's leaf is
//   leaf data  = Field(task_id)  Field(decimal attempt)  Field(outcome digest, 64 hex)
//                Field("permanent" when TaskFinished.permanent, else "")
//   leaf hash  = SHA-256(0x00 || leaf data)
// The leaves form an RFC 6962 Merkle tree (common/merkle.h: inner nodes are
// SHA-256(0x01 || left || right); n that is not a power of two splits at the largest
// power of two below n; a 1-result batch's root is its leaf hash), and
//   batch root message =
//       Field("retire-cluster result batch v1")    domain separation
//       Field(worker_device_id)  Field(decimal signed_at_ms)  Field(decimal batch size n)
//       Field(batch root, 64 lowercase hex)
//   signature = Ed25519(worker's private key, batch root message)   (64 bytes, RFC 8032)
// Each result stores its outcome digest, attempt, permanent, the batch root, its leaf
// index and n, its inclusion proof (the sibling hashes from its leaf up, RFC 9162's audit
// path) and the signature, so one task verifies alone: recompute the leaf from the stored
// task, walk the proof up to the root, check the signature over the root message. A
// proof cannot be moved to another task (its leaf differs) nor the root swapped (the
// proof then leads elsewhere, or the signature fails).
//
// Single signatures (issue 6 to 17; ResultSignature.batch_size == 0). Records signed
// before batches keep verifying exactly as then:
//   signed message =
//       Field("retire-cluster result v1")          domain separation
//       Field(task_id)  Field(decimal attempt)  Field(worker_device_id)
//       Field(outcome digest, 64 hex characters)   Field(decimal signed_at_ms)
//       [Field("permanent")]                       only when TaskFinished.permanent
//   signature = Ed25519(worker's private key, signed message)
//
// `permanent` (the worker's word that retrying is pointless, which lets the coordinator
// end a task FAILED before its retries run out) is signed because it changes how the
// task ends. In a single signature it is a trailing field present only when true, so
// every message signed before it existed (never permanent) is byte-for-byte the message
// verified now: old records keep verifying, and a coordinator can neither add nor drop
// the claim.
//
// Not covered: execution time, resource usage, start/finish times and the attempt
// history (the coordinator's bookkeeping), and the note the coordinator appends to the
// error message of a task that failed for good (see StripFinalFailureNote).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "retire_cluster/v1/task.pb.h"
#include "retire_cluster/v1/worker_service.pb.h"

typedef struct evp_pkey_st EVP_PKEY;  // <openssl/types.h>

namespace rc {

namespace pb = ::retire_cluster::v1;

constexpr absl::string_view kResultSignatureDomain = "retire-cluster result v1";
constexpr absl::string_view kResultBatchDomain = "retire-cluster result batch v1";
constexpr size_t kEd25519PublicKeyBytes = 32;
constexpr size_t kEd25519SignatureBytes = 64;

// What a user reads as the outcome of an attempt (views into a TaskFinished or Task).
struct Outcome {
  pb::TaskStatus status = pb::TASK_STATUS_UNSPECIFIED;
  absl::string_view result;
  absl::string_view error_message;
  int32_t exit_code = 0;
  absl::string_view stdout_text;
  absl::string_view stderr_text;
};
Outcome OutcomeOf(const pb::TaskFinished& finished);
Outcome OutcomeOf(const pb::Task& task);

// The length-prefixed encoding above, and its hex SHA-256.
std::string CanonicalOutcome(const Outcome& outcome);
std::string OutcomeDigest(const Outcome& outcome);
// The signed message for these fields (see above).
std::string SignedMessage(absl::string_view task_id, int32_t attempt, absl::string_view worker_device_id,
                          absl::string_view outcome_digest, int64_t signed_at_ms, bool permanent = false);

// A result's leaf data and a batch's root message (see above; `batch_root` raw 32 bytes).
std::string ResultLeaf(absl::string_view task_id, int32_t attempt, absl::string_view outcome_digest, bool permanent);
std::string BatchRootMessage(absl::string_view worker_device_id, int64_t signed_at_ms, uint32_t batch_size,
                             absl::string_view batch_root);

// An Ed25519 private key (OpenSSL). Copies share the key; safe to use from many threads.
class Ed25519Key {
 public:
  // INTERNAL if OpenSSL fails.
  static absl::StatusOr<Ed25519Key> Generate();
  // From a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). INVALID_ARGUMENT when the text is
  // not a PEM private key or the key is not Ed25519.
  static absl::StatusOr<Ed25519Key> FromPem(absl::string_view pem);

  // PKCS#8 PEM of the private key (what FromPem reads).
  std::string PrivatePem() const;
  // The raw 32-byte public key.
  const std::string& public_key() const { return public_key_; }
  // A 64-byte signature over `message`. INTERNAL if OpenSSL fails.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

 private:
  static absl::StatusOr<Ed25519Key> Wrap(EVP_PKEY* pkey);
  std::shared_ptr<EVP_PKEY> pkey_;
  std::string public_key_;
};

// OK when `signature` is `public_key`'s valid Ed25519 signature over `message`;
// INVALID_ARGUMENT for a key or signature of the wrong size; PERMISSION_DENIED when the
// signature does not match.
absl::Status Ed25519Verify(absl::string_view public_key, absl::string_view message, absl::string_view signature);

// The signature of `finished` by `key` for worker `device_id` at `signed_at_ms` (its
// public_key field is left empty: the coordinator fills in the key it recorded). Its
// `permanent` copies finished.permanent.
absl::StatusOr<pb::ResultSignature> SignOutcome(const Ed25519Key& key, const pb::TaskFinished& finished,
                                                absl::string_view device_id, int64_t signed_at_ms);

// One signature over `batch` (the finished events of one message, at least one) by
// `key` for worker `device_id` at `signed_at_ms`: the signatures to attach, in order,
// each with its proof (public_key left empty, as above). INVALID_ARGUMENT for an empty
// batch; INTERNAL if OpenSSL fails.
absl::StatusOr<std::vector<pb::ResultSignature>> SignBatch(const Ed25519Key& key,
                                                           absl::Span<const pb::TaskFinished* const> batch,
                                                           absl::string_view device_id, int64_t signed_at_ms);

// Checks `sig` over task `task_id`'s `outcome` against the raw `public_key`:
//   FAILED_PRECONDITION "no signature"                                 (none stored)
//   DATA_LOSS "result digest does not match the stored result ..."     (outcome changed)
//   PERMISSION_DENIED "signature does not match public key HEX ..."    (signed fields
//                      changed, or another key signed)
//   PERMISSION_DENIED "inclusion proof ..."                            (a batch
//                      signature whose proof, index or size does not lead from this
//                      task's leaf to the signed batch root)
//   INVALID_ARGUMENT   a key or signature of the wrong size.
absl::Status VerifyOutcome(absl::string_view task_id, const Outcome& outcome, const pb::ResultSignature& sig,
                           absl::string_view public_key);

// The coordinator records a task that failed for good as "WHY (attempt N of M; no
// retries left)", WHY being the worker's error message or "handler failed" when it gave
// none. Returns WHY when `error_message` has that shape for attempt `attempt`; nullopt
// otherwise.
std::optional<std::string> StripFinalFailureNote(absl::string_view error_message, int32_t attempt);

// Public keys as users see them: lowercase hex (64 characters); ParsePublicKey also
// takes base64 (44 characters, or 43 unpadded). INVALID_ARGUMENT otherwise.
std::string PublicKeyHex(absl::string_view raw);
absl::StatusOr<std::string> ParsePublicKey(absl::string_view text);

}  // namespace rc
