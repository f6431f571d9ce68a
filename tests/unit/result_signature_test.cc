// Signed results: the canonical bytes, sign/verify and what each tampering does; the
// worker's key file (creation, permissions, reuse). Batch signatures and the outbox that
// signs them: result_batch_test.cc.
#include <catch2/catch.hpp>

#include <openssl/sha.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "common/ids.h"
#include "common/result_signature.h"
#include "tests/unit/signed_outcome.h"
#include "worker/worker_key.h"

namespace rc {
namespace {

pb::TaskFinished Finished() {
  pb::TaskFinished f;
  f.set_task_id("task-0123456789abcdef");
  f.set_attempt(2);
  f.set_status(pb::TASK_STATUS_SUCCESS);
  f.set_result(R"({"answer":42})");
  f.set_error_message("");
  f.set_exit_code(0);
  f.set_stdout("out\n");
  f.set_stderr("err\n");
  return f;
}

using testing::Field;
using testing::Stored;
using testing::Verify;

std::string TempDir() {
  auto dir = std::filesystem::temp_directory_path() / NewId("rc-key-test");
  return dir.string();
}

TEST_CASE("The canonical outcome and signed message are length-prefixed fields in a fixed order") {
  pb::TaskFinished f = Finished();
  CHECK(CanonicalOutcome(OutcomeOf(f)) ==
        Field("success") + Field(R"({"answer":42})") + Field("") + Field("0") + Field("out\n") + Field("err\n"));
  f.set_exit_code(-9);
  CHECK(CanonicalOutcome(OutcomeOf(f)).find(Field("-9")) != std::string::npos);
  CHECK(SignedMessage("t", 3, "w1", "ab", 1700000000123) ==
        Field("retire-cluster result v1") + Field("t") + Field("3") + Field("w1") + Field("ab") +
            Field("1700000000123"));
  // `permanent` is a trailing field present only when true: messages signed before it
  // existed are byte-for-byte what is verified now.
  CHECK(SignedMessage("t", 3, "w1", "ab", 1700000000123, /*permanent=*/true) ==
        SignedMessage("t", 3, "w1", "ab", 1700000000123) + Field("permanent"));
  // The digest is the hex SHA-256 of exactly those bytes.
  const std::string canonical = CanonicalOutcome(OutcomeOf(f));
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), md);
  CHECK(OutcomeDigest(OutcomeOf(f)) == absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), sizeof(md))));
  // Moving a byte from one field into its neighbour changes the digest.
  pb::TaskFinished a = Finished(), b = Finished();
  a.set_stdout("ab");
  a.set_stderr("c");
  b.set_stdout("a");
  b.set_stderr("bc");
  CHECK(OutcomeDigest(OutcomeOf(a)) != OutcomeDigest(OutcomeOf(b)));
  // A task and the report it came from digest alike.
  CHECK(OutcomeDigest(OutcomeOf(Finished())) ==
        OutcomeDigest(OutcomeOf(Stored(Finished(), pb::ResultSignature(), ""))));
}

TEST_CASE("A signed outcome verifies and each tampered field fails with its reason") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  CHECK(key->public_key().size() == 32);
  pb::TaskFinished f = Finished();
  absl::StatusOr<pb::ResultSignature> sig = SignOutcome(*key, f, "w1", 1700000000123);
  REQUIRE(sig.ok());
  CHECK(sig->signature().size() == 64);
  CHECK(sig->worker_device_id() == "w1");
  CHECK(sig->attempt() == 2);
  CHECK(sig->signed_at_ms() == 1700000000123);
  CHECK(sig->public_key().empty());  // the coordinator fills in the key it recorded
  const pb::Task good = Stored(f, *sig, key->public_key());
  REQUIRE(Verify(good).ok());

  auto digest_fails = [](const pb::Task& t) {
    absl::Status s = Verify(t);
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.message()), Catch::StartsWith("result digest does not match the stored result"));
  };
  auto signature_fails = [&](const pb::Task& t) {
    absl::Status s = Verify(t);
    CHECK(s.code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(s.message()), Catch::StartsWith("signature does not match public key "));
  };
  pb::Task t = good;
  t.set_result(R"({"answer":43})");
  digest_fails(t);
  t = good;
  t.set_stdout("out\nmore\n");
  digest_fails(t);
  t = good;
  t.set_stderr("");
  digest_fails(t);
  t = good;
  t.set_status(pb::TASK_STATUS_FAILED);
  digest_fails(t);
  t = good;
  t.set_error_message("oops");
  digest_fails(t);
  t = good;
  t.set_exit_code(1);
  digest_fails(t);
  // A result rewritten together with a digest that matches it: the signature fails.
  t = good;
  t.set_result(R"({"answer":43})");
  t.mutable_signature()->set_result_digest(OutcomeDigest(OutcomeOf(t)));
  signature_fails(t);
  t = good;
  t.set_task_id("task-fedcba9876543210");
  signature_fails(t);
  t = good;
  t.mutable_signature()->set_attempt(3);
  signature_fails(t);
  t = good;
  t.mutable_signature()->set_signed_at_ms(1700000000124);
  signature_fails(t);
  t = good;
  t.mutable_signature()->set_worker_device_id("w2");
  signature_fails(t);
  t = good;
  t.mutable_signature()->set_permanent(true);  // a claim the worker did not sign
  signature_fails(t);
  t = good;
  std::string bad_sig = t.signature().signature();
  bad_sig[10] ^= 1;
  t.mutable_signature()->set_signature(bad_sig);
  signature_fails(t);

  // Another key: the recorded key does not match the signer.
  absl::StatusOr<Ed25519Key> other = Ed25519Key::Generate();
  REQUIRE(other.ok());
  t = good;
  t.mutable_signature()->set_public_key(other->public_key());
  signature_fails(t);
  CHECK_THAT(std::string(Verify(t).message()), Catch::Contains(PublicKeyHex(other->public_key())));

  t = good;
  t.clear_signature();
  CHECK(Verify(t).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Verify(t).message() == "no signature");
  t = good;
  t.mutable_signature()->set_public_key("short");
  CHECK(Verify(t).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Keys round-trip through PEM and public keys parse from hex and base64") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  const std::string pem = key->PrivatePem();
  CHECK_THAT(pem, Catch::StartsWith("-----BEGIN PRIVATE KEY-----"));
  absl::StatusOr<Ed25519Key> back = Ed25519Key::FromPem(pem);
  REQUIRE(back.ok());
  CHECK(back->public_key() == key->public_key());
  absl::StatusOr<std::string> sig = back->Sign("message");
  REQUIRE(sig.ok());
  CHECK(Ed25519Verify(key->public_key(), "message", *sig).ok());
  CHECK(Ed25519Verify(key->public_key(), "messagf", *sig).code() == absl::StatusCode::kPermissionDenied);

  CHECK(Ed25519Key::FromPem("not a key").status().code() == absl::StatusCode::kInvalidArgument);

  const std::string hex = PublicKeyHex(key->public_key());
  CHECK(hex.size() == 64);
  CHECK(ParsePublicKey(hex).value() == key->public_key());
  CHECK(ParsePublicKey(absl::Base64Escape(key->public_key())).value() == key->public_key());
  CHECK(ParsePublicKey("abc").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ParsePublicKey(std::string(64, 'g')).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("The coordinator's final-failure note is undone only in its exact shape") {
  CHECK(StripFinalFailureNote("exit code 1 (attempt 2 of 2; no retries left)", 2) == "exit code 1");
  CHECK(StripFinalFailureNote("handler failed (attempt 4 of 4; no retries left)", 4) == "handler failed");
  CHECK_FALSE(StripFinalFailureNote("exit code 1 (attempt 1 of 2; no retries left)", 2).has_value());
  CHECK_FALSE(StripFinalFailureNote("exit code 1", 1).has_value());
  CHECK_FALSE(StripFinalFailureNote("x (attempt 1 of y; no retries left)", 1).has_value());
}

TEST_CASE("The worker key is created once with mode 0600 and reused") {
  const std::string dir = TempDir() + "/nested";
  absl::StatusOr<Ed25519Key> first = worker::LoadOrCreateWorkerKey(dir);
  REQUIRE(first.ok());
  const std::string path = dir + "/worker_key.pem";
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  absl::StatusOr<Ed25519Key> again = worker::LoadOrCreateWorkerKey(dir);
  REQUIRE(again.ok());
  CHECK(again->public_key() == first->public_key());
  // No temporary files are left beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  SECTION("a key readable by others is refused, naming the file and the fix") {
    REQUIRE(chmod(path.c_str(), 0644) == 0);
    absl::StatusOr<Ed25519Key> k = worker::LoadOrCreateWorkerKey(dir);
    REQUIRE(k.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(k.status().message()), Catch::Contains(path) && Catch::Contains("0644") &&
                                                      Catch::Contains("too open") && Catch::Contains("chmod 600"));
    REQUIRE(chmod(path.c_str(), 0640) == 0);
    CHECK(worker::LoadOrCreateWorkerKey(dir).status().code() == absl::StatusCode::kFailedPrecondition);
  }
  SECTION("a file that is not a key is refused, not replaced") {
    { std::ofstream(path, std::ios::trunc) << "garbage\n"; }
    absl::StatusOr<Ed25519Key> k = worker::LoadOrCreateWorkerKey(dir);
    REQUIRE(k.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(k.status().message()), Catch::Contains(path));
  }
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST_CASE("Workers starting together on one data dir end up with the same key") {
  const std::string dir = TempDir();
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<Ed25519Key> k = worker::LoadOrCreateWorkerKey(dir);
      if (k.ok()) keys[i] = k->public_key();
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& k : keys) CHECK((!k.empty() && k == keys[0]));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rc
