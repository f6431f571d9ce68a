#include "common/result_signature.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/merkle.h"
#include "common/task_names.h"

namespace rc {
namespace {

// 8-byte big-endian length, then the bytes.
void AppendLength(std::string* out, uint64_t n) {
  char len[8];
  for (int i = 7; i >= 0; --i, n >>= 8) len[i] = static_cast<char>(n & 0xff);
  out->append(len, sizeof(len));
}

void AppendField(std::string* out, absl::string_view field) {
  AppendLength(out, field.size());
  out->append(field.data(), field.size());
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

// The outcome's fields in signing order; integers as decimal text.
template <typename Fn>
void ForEachOutcomeField(const Outcome& o, Fn&& fn) {
  const std::string exit_code = absl::StrCat(o.exit_code);
  fn(StatusName(o.status));
  fn(o.result);
  fn(o.error_message);
  fn(exit_code);
  fn(o.stdout_text);
  fn(o.stderr_text);
}

}  // namespace

Outcome OutcomeOf(const pb::TaskFinished& f) {
  return Outcome{f.status(), f.result(), f.error_message(), f.exit_code(), f.stdout(), f.stderr()};
}

Outcome OutcomeOf(const pb::Task& t) {
  return Outcome{t.status(), t.result(), t.error_message(), t.exit_code(), t.stdout(), t.stderr()};
}

std::string CanonicalOutcome(const Outcome& outcome) {
  std::string out;
  ForEachOutcomeField(outcome, [&](absl::string_view field) { AppendField(&out, field); });
  return out;
}

std::string OutcomeDigest(const Outcome& outcome) {
  // Streamed: stdout and stderr may be a megabyte each, not worth copying.
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  ForEachOutcomeField(outcome, [&](absl::string_view field) {
    std::string len;
    AppendLength(&len, field.size());
    ok = ok && EVP_DigestUpdate(ctx.get(), len.data(), len.size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), field.data(), field.size()) == 1;
  });
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int md_len = 0;
  ok = ok && EVP_DigestFinal_ex(ctx.get(), md.data(), &md_len) == 1;
  if (!ok) return "";  // never matches a stored 64-character digest
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md.data()), md_len));
}

std::string SignedMessage(absl::string_view task_id, int32_t attempt, absl::string_view worker_device_id,
                          absl::string_view outcome_digest, int64_t signed_at_ms, bool permanent) {
  std::string out;
  out.reserve(6 * 8 + kResultSignatureDomain.size() + task_id.size() + worker_device_id.size() + 64 + 32);
  AppendField(&out, kResultSignatureDomain);
  AppendField(&out, task_id);
  AppendField(&out, absl::StrCat(attempt));
  AppendField(&out, worker_device_id);
  AppendField(&out, outcome_digest);
  AppendField(&out, absl::StrCat(signed_at_ms));
  if (permanent) AppendField(&out, "permanent");  // absent when false: older messages unchanged
  return out;
}

std::string ResultLeaf(absl::string_view task_id, int32_t attempt, absl::string_view outcome_digest, bool permanent) {
  std::string out;
  out.reserve(4 * 8 + task_id.size() + 11 + outcome_digest.size() + 9);
  AppendField(&out, task_id);
  AppendField(&out, absl::StrCat(attempt));
  AppendField(&out, outcome_digest);
  AppendField(&out, permanent ? "permanent" : "");
  return out;
}

std::string BatchRootMessage(absl::string_view worker_device_id, int64_t signed_at_ms, uint32_t batch_size,
                             absl::string_view batch_root) {
  std::string out;
  AppendField(&out, kResultBatchDomain);
  AppendField(&out, worker_device_id);
  AppendField(&out, absl::StrCat(signed_at_ms));
  AppendField(&out, absl::StrCat(batch_size));
  AppendField(&out, absl::BytesToHexString(batch_root));
  return out;
}

absl::StatusOr<Ed25519Key> Ed25519Key::Wrap(EVP_PKEY* pkey) {
  Ed25519Key key;
  key.pkey_.reset(pkey, EVP_PKEY_free);
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError("the key is not an Ed25519 key");
  }
  size_t len = kEd25519PublicKeyBytes;
  key.public_key_.resize(len);
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(key.public_key_.data()), &len) != 1 ||
      len != kEd25519PublicKeyBytes) {
    return absl::InternalError("OpenSSL could not export the Ed25519 public key");
  }
  return key;
}

absl::StatusOr<Ed25519Key> Ed25519Key::Generate() {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr) return absl::InternalError("OpenSSL could not generate an Ed25519 key");
  return Wrap(pkey);
}

absl::StatusOr<Ed25519Key> Ed25519Key::FromPem(absl::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError("OpenSSL could not allocate a buffer");
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) return absl::InvalidArgumentError("not a PEM private key");
  return Wrap(pkey);
}

std::string Ed25519Key::PrivatePem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return "";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

absl::StatusOr<std::string> Ed25519Key::Sign(absl::string_view message) const {
  // One signing context per thread, reused while the key stays the same: initialising
  // one costs a provider fetch each time. An EdDSA context may sign again (OpenSSL's own
  // speed test does); should that ever fail, a fresh context gets one more try. The
  // context holds a reference to its key, so a cached address is never a reused one.
  thread_local struct {
    EVP_PKEY* key = nullptr;
    MdCtx ctx;
  } cache;
  std::string sig(kEd25519SignatureBytes, '\0');
  for (int fresh = 0; fresh < 2; ++fresh) {
    if (cache.key != pkey_.get() || fresh == 1) {
      cache.key = nullptr;
      cache.ctx.reset(EVP_MD_CTX_new());
      if (cache.ctx == nullptr || EVP_DigestSignInit(cache.ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1) {
        break;
      }
      cache.key = pkey_.get();
    }
    size_t len = sig.size();
    if (EVP_DigestSign(cache.ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1 &&
        len == kEd25519SignatureBytes) {
      return sig;
    }
  }
  cache.key = nullptr;
  return absl::InternalError("OpenSSL could not sign with the Ed25519 key");
}

absl::Status Ed25519Verify(absl::string_view public_key, absl::string_view message, absl::string_view signature) {
  if (public_key.size() != kEd25519PublicKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the public key has ", public_key.size(), " bytes; an Ed25519 key has ",
                                                   kEd25519PublicKeyBytes));
  }
  if (signature.size() != kEd25519SignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the signature has ", signature.size(),
                                                   " bytes; an Ed25519 signature has ", kEd25519SignatureBytes));
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(public_key.data()),
                                  public_key.size()),
      EVP_PKEY_free);
  MdCtx ctx(EVP_MD_CTX_new());
  if (pkey == nullptr || ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return absl::InternalError("OpenSSL could not load the Ed25519 public key");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return absl::PermissionDeniedError("the signature does not match");
  }
  return absl::OkStatus();
}

absl::StatusOr<pb::ResultSignature> SignOutcome(const Ed25519Key& key, const pb::TaskFinished& finished,
                                                absl::string_view device_id, int64_t signed_at_ms) {
  pb::ResultSignature sig;
  sig.set_worker_device_id(std::string(device_id));
  sig.set_attempt(finished.attempt());
  sig.set_result_digest(OutcomeDigest(OutcomeOf(finished)));
  sig.set_signed_at_ms(signed_at_ms);
  sig.set_permanent(finished.permanent());
  absl::StatusOr<std::string> s = key.Sign(
      SignedMessage(finished.task_id(), sig.attempt(), device_id, sig.result_digest(), signed_at_ms, sig.permanent()));
  if (!s.ok()) return s.status();
  sig.set_signature(*std::move(s));
  return sig;
}

absl::StatusOr<std::vector<pb::ResultSignature>> SignBatch(const Ed25519Key& key,
                                                           absl::Span<const pb::TaskFinished* const> batch,
                                                           absl::string_view device_id, int64_t signed_at_ms) {
  if (batch.empty()) return absl::InvalidArgumentError("a batch to sign needs at least one result");
  std::vector<pb::ResultSignature> sigs(batch.size());
  std::vector<std::string> leaves(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const pb::TaskFinished& f = *batch[i];
    pb::ResultSignature& sig = sigs[i];
    sig.set_attempt(f.attempt());
    sig.set_result_digest(OutcomeDigest(OutcomeOf(f)));
    sig.set_permanent(f.permanent());
    leaves[i] = merkle::LeafHash(ResultLeaf(f.task_id(), f.attempt(), sig.result_digest(), f.permanent()));
  }
  absl::StatusOr<merkle::Tree> tree = merkle::Build(leaves);
  if (!tree.ok() || tree->root.size() != merkle::kHashBytes) {
    return absl::InternalError("OpenSSL could not hash the batch of results");
  }
  const uint32_t n = static_cast<uint32_t>(batch.size());
  absl::StatusOr<std::string> signature = key.Sign(BatchRootMessage(device_id, signed_at_ms, n, tree->root));
  if (!signature.ok()) return signature.status();
  for (size_t i = 0; i < batch.size(); ++i) {
    pb::ResultSignature& sig = sigs[i];
    sig.set_worker_device_id(std::string(device_id));
    sig.set_signed_at_ms(signed_at_ms);
    sig.set_signature(*signature);
    sig.set_batch_root(tree->root);
    for (std::string& h : tree->proofs[i]) sig.add_proof(std::move(h));
    sig.set_leaf_index(static_cast<uint32_t>(i));
    sig.set_batch_size(n);
  }
  return sigs;
}

namespace {

absl::Status SignatureMismatch(absl::string_view public_key, absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat("signature does not match public key ", PublicKeyHex(public_key),
                                                  ": another key signed it, or the signed fields (", what,
                                                  ") were altered"));
}

// A single signature (batch_size 0): over this result alone, as before issue 18.
absl::Status VerifySingle(absl::string_view task_id, const pb::ResultSignature& sig, absl::string_view public_key) {
  absl::Status s = Ed25519Verify(
      public_key,
      SignedMessage(task_id, sig.attempt(), sig.worker_device_id(), sig.result_digest(), sig.signed_at_ms(),
                    sig.permanent()),
      sig.signature());
  if (s.code() == absl::StatusCode::kPermissionDenied) {
    return SignatureMismatch(public_key, "task id, attempt, device, time, permanent");
  }
  return s;
}

// A batch signature: this task's leaf, up its proof to the batch root, which was signed.
absl::Status VerifyInBatch(absl::string_view task_id, const pb::ResultSignature& sig, absl::string_view public_key) {
  const std::string leaf =
      merkle::LeafHash(ResultLeaf(task_id, sig.attempt(), sig.result_digest(), sig.permanent()));
  const std::vector<std::string> proof(sig.proof().begin(), sig.proof().end());
  absl::StatusOr<std::string> root = merkle::RootFromProof(leaf, sig.leaf_index(), sig.batch_size(), proof);
  if (!root.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("inclusion proof is malformed: ", root.status().message()));
  }
  if (*root != sig.batch_root()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "inclusion proof does not lead to the signed batch root: this task's leaf (task id, attempt, digest, "
        "permanent) at index ",
        sig.leaf_index(), " of ", sig.batch_size(), " hashes up to ", absl::BytesToHexString(*root),
        ", the batch root is ", absl::BytesToHexString(sig.batch_root())));
  }
  absl::Status s = Ed25519Verify(
      public_key, BatchRootMessage(sig.worker_device_id(), sig.signed_at_ms(), sig.batch_size(), sig.batch_root()),
      sig.signature());
  if (s.code() == absl::StatusCode::kPermissionDenied) {
    return SignatureMismatch(public_key, "batch root, batch size, device, time");
  }
  return s;
}

}  // namespace

absl::Status VerifyOutcome(absl::string_view task_id, const Outcome& outcome, const pb::ResultSignature& sig,
                           absl::string_view public_key) {
  if (sig.signature().empty()) return absl::FailedPreconditionError("no signature");
  const std::string digest = OutcomeDigest(outcome);
  if (digest != sig.result_digest()) {
    return absl::DataLossError(absl::StrCat("result digest does not match the stored result: signed ",
                                            sig.result_digest(), ", stored outcome hashes to ", digest));
  }
  if (sig.batch_size() == 0) return VerifySingle(task_id, sig, public_key);
  return VerifyInBatch(task_id, sig, public_key);
}

std::optional<std::string> StripFinalFailureNote(absl::string_view error_message, int32_t attempt) {
  // "WHY (attempt N of M; no retries left)"
  const std::string head = absl::StrCat(" (attempt ", attempt, " of ");
  constexpr absl::string_view kTail = "; no retries left)";
  if (!absl::ConsumeSuffix(&error_message, kTail)) return std::nullopt;
  const size_t at = error_message.rfind(head);
  if (at == absl::string_view::npos) return std::nullopt;
  int max_attempts = 0;
  if (!absl::SimpleAtoi(error_message.substr(at + head.size()), &max_attempts)) return std::nullopt;
  return std::string(error_message.substr(0, at));
}

std::string PublicKeyHex(absl::string_view raw) { return absl::BytesToHexString(raw); }

absl::StatusOr<std::string> ParsePublicKey(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::string raw;
  if (text.size() == 2 * kEd25519PublicKeyBytes &&
      std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    raw = absl::HexStringToBytes(text);
  } else if ((text.size() == 44 || text.size() == 43) && absl::Base64Unescape(text, &raw) &&
             raw.size() == kEd25519PublicKeyBytes) {
    // base64
  } else {
    return absl::InvalidArgumentError(
        "a public key is 64 hex characters or 44 base64 characters (a raw 32-byte Ed25519 key)");
  }
  return raw;
}

}  // namespace rc
