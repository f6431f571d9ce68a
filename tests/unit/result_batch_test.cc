// Batch signatures (issue 18): one Ed25519 signature over a Merkle root per message of
// results, each result verifiable alone with its proof; what each tampering does; the
// outbox signing each message it takes as one batch, and resending signed results as
// they were.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/merkle.h"
#include "common/result_signature.h"
#include "tests/unit/signed_outcome.h"
#include "worker/session/outbox.h"
#include "worker/worker_key.h"

namespace rc {
namespace {

pb::TaskFinished Finished(int i) {
  pb::TaskFinished f;
  f.set_task_id(absl::StrCat("task-", i));
  f.set_attempt(1 + i % 3);
  f.set_status(pb::TASK_STATUS_SUCCESS);
  f.set_result(absl::StrCat(R"({"n":)", i, "}"));
  f.set_stdout("out\n");
  return f;
}

using testing::Field;
using testing::Verify;

pb::Task Stored(const pb::TaskFinished& f, const std::string& public_key) {
  return testing::Stored(f, f.signature(), public_key);
}

// `n` results signed as one batch, stored as the coordinator would store them.
std::vector<pb::Task> SignedBatch(const Ed25519Key& key, int n, int first = 0, int64_t at = 1700000000123) {
  std::vector<pb::TaskFinished> finished;
  for (int i = 0; i < n; ++i) finished.push_back(Finished(first + i));
  std::vector<const pb::TaskFinished*> batch;
  for (const auto& f : finished) batch.push_back(&f);
  absl::StatusOr<std::vector<pb::ResultSignature>> sigs = SignBatch(key, batch, "w1", at);
  REQUIRE(sigs.ok());
  REQUIRE(sigs->size() == static_cast<size_t>(n));
  std::vector<pb::Task> out;
  for (int i = 0; i < n; ++i) {
    *finished[i].mutable_signature() = (*sigs)[i];
    out.push_back(Stored(finished[i], key.public_key()));
  }
  return out;
}

TEST_CASE("The leaf and the batch root message are length-prefixed fields in a fixed order") {
  CHECK(ResultLeaf("t", 3, "ab", false) == Field("t") + Field("3") + Field("ab") + Field(""));
  CHECK(ResultLeaf("t", 3, "ab", true) == Field("t") + Field("3") + Field("ab") + Field("permanent"));
  const std::string root(32, '\x01');
  CHECK(BatchRootMessage("w1", 1700000000123, 5, root) ==
        Field("retire-cluster result batch v1") + Field("w1") + Field("1700000000123") + Field("5") +
            Field("0101010101010101010101010101010101010101010101010101010101010101"));
}

TEST_CASE("Each result of a batch verifies alone with its proof in batches of 1 2 3 5 and 8 results") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  for (int n : {1, 2, 3, 5, 8}) {
    std::vector<pb::Task> tasks = SignedBatch(*key, n);
    for (int i = 0; i < n; ++i) {
      INFO(n << " results, result " << i);
      const pb::ResultSignature& sig = tasks[i].signature();
      CHECK(sig.batch_size() == static_cast<uint32_t>(n));
      CHECK(sig.leaf_index() == static_cast<uint32_t>(i));
      CHECK(sig.batch_root().size() == 32);
      CHECK(sig.signature() == tasks[0].signature().signature());  // one signature per batch
      CHECK(sig.attempt() == 1 + i % 3);
      CHECK(sig.result_digest() == OutcomeDigest(OutcomeOf(tasks[i])));
      // Exactly what the header documents: the leaf, up the proof, to the signed root.
      const std::string leaf = merkle::LeafHash(ResultLeaf(tasks[i].task_id(), sig.attempt(), sig.result_digest(), false));
      absl::StatusOr<std::string> root = merkle::RootFromProof(
          leaf, i, n, std::vector<std::string>(sig.proof().begin(), sig.proof().end()));
      REQUIRE(root.ok());
      CHECK(*root == sig.batch_root());
      CHECK(Ed25519Verify(key->public_key(), BatchRootMessage("w1", sig.signed_at_ms(), n, *root), sig.signature()).ok());
      pb::Task alone = tasks[i];  // nothing of the other tasks is needed
      CHECK(Verify(alone).ok());
    }
  }
  CHECK(SignBatch(*key, {}, "w1", 1).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Tampering with a batch-signed result fails with its reason") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  const std::vector<pb::Task> batch = SignedBatch(*key, 5);
  const std::vector<pb::Task> other_batch = SignedBatch(*key, 5, 10, 1700000000999);
  const pb::Task good = batch[2];
  REQUIRE(Verify(good).ok());

  auto fails = [](const pb::Task& t, absl::StatusCode code, const std::string& start) {
    absl::Status s = Verify(t);
    CHECK(s.code() == code);
    CHECK_THAT(std::string(s.message()), Catch::StartsWith(start));
  };
  const auto denied = absl::StatusCode::kPermissionDenied;
  pb::Task t = good;
  t.set_result(R"({"n":99})");  // a changed result
  fails(t, absl::StatusCode::kDataLoss, "result digest does not match the stored result");
  t = good;  // a changed result with a digest to match: its leaf is not in the tree
  t.set_result(R"({"n":99})");
  t.mutable_signature()->set_result_digest(OutcomeDigest(OutcomeOf(t)));
  fails(t, denied, "inclusion proof does not lead to the signed batch root");
  for (int i = 0; i < good.signature().proof_size(); ++i) {  // a changed proof hash
    t = good;
    (*t.mutable_signature()->mutable_proof(i))[5] ^= 1;
    fails(t, denied, "inclusion proof does not lead to the signed batch root");
  }
  for (uint32_t index : {0u, 1u, 3u, 4u}) {  // a changed index
    t = good;
    t.mutable_signature()->set_leaf_index(index);
    fails(t, denied, "inclusion proof");
  }
  t = good;
  t.mutable_signature()->set_leaf_index(5);
  fails(t, denied, "inclusion proof is malformed: leaf index 5 is not below the batch size 5");
  t = good;  // another task's proof from the same batch
  for (int other : {0, 1, 3, 4}) {
    t = good;
    t.mutable_signature()->mutable_proof()->CopyFrom(batch[other].signature().proof());
    t.mutable_signature()->set_leaf_index(batch[other].signature().leaf_index());
    fails(t, denied, "inclusion proof does not lead to the signed batch root");
  }
  t = good;  // a swapped root (another batch by the same key)
  t.mutable_signature()->set_batch_root(other_batch[2].signature().batch_root());
  fails(t, denied, "inclusion proof does not lead to the signed batch root");
  t = good;  // another batch's root, signature and time, this task's proof
  t.mutable_signature()->set_batch_root(other_batch[2].signature().batch_root());
  t.mutable_signature()->set_signature(other_batch[2].signature().signature());
  t.mutable_signature()->set_signed_at_ms(other_batch[2].signature().signed_at_ms());
  fails(t, denied, "inclusion proof does not lead to the signed batch root");
  t = good;  // ... and that batch's proof too: the leaf is still this task's
  t.mutable_signature()->mutable_proof()->CopyFrom(other_batch[2].signature().proof());
  t.mutable_signature()->set_batch_root(other_batch[2].signature().batch_root());
  t.mutable_signature()->set_signature(other_batch[2].signature().signature());
  t.mutable_signature()->set_signed_at_ms(other_batch[2].signature().signed_at_ms());
  fails(t, denied, "inclusion proof does not lead to the signed batch root");
  t = good;  // a proof with a hash dropped
  t.mutable_signature()->mutable_proof()->RemoveLast();
  fails(t, denied, "inclusion proof is malformed: the proof has 2 hashes, fewer than leaf 2 of 5 needs");
  // Signed fields of the leaf: its proof no longer leads to the root.
  t = good;
  t.set_task_id("task-other");
  fails(t, denied, "inclusion proof");
  t = good;
  t.mutable_signature()->set_attempt(9);
  fails(t, denied, "inclusion proof");
  t = good;
  t.mutable_signature()->set_permanent(true);
  fails(t, denied, "inclusion proof");
  // Signed fields of the root message: the signature fails.
  const std::string sig_fails = "signature does not match public key " + PublicKeyHex(key->public_key());
  t = good;
  t.mutable_signature()->set_signed_at_ms(1700000000124);
  fails(t, denied, sig_fails);
  t = good;
  t.mutable_signature()->set_worker_device_id("w2");
  fails(t, denied, sig_fails);
  // Leaf 0 of 4 and of 3 has the same path: only the signed size tells them apart.
  const std::vector<pb::Task> four = SignedBatch(*key, 4);
  t = four[0];
  REQUIRE(Verify(t).ok());
  t.mutable_signature()->set_batch_size(3);
  fails(t, denied, sig_fails);
  t = good;
  std::string bad = t.signature().signature();
  bad[7] ^= 1;
  t.mutable_signature()->set_signature(bad);
  fails(t, denied, sig_fails);
  absl::StatusOr<Ed25519Key> other_key = Ed25519Key::Generate();
  REQUIRE(other_key.ok());
  t = good;
  t.mutable_signature()->set_public_key(other_key->public_key());
  fails(t, denied, "signature does not match public key " + PublicKeyHex(other_key->public_key()));
}

TEST_CASE("Records signed alone before batches still verify as before") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  pb::TaskFinished f = Finished(1);
  absl::StatusOr<pb::ResultSignature> sig = SignOutcome(*key, f, "w1", 1700000000123);
  REQUIRE(sig.ok());
  CHECK(sig->batch_size() == 0);
  CHECK(sig->proof_size() == 0);
  *f.mutable_signature() = *sig;
  pb::Task t = Stored(f, key->public_key());
  REQUIRE(Verify(t).ok());
  // Its signature is over the single-result message, not a root message.
  CHECK(Ed25519Verify(key->public_key(),
                      SignedMessage(t.task_id(), sig->attempt(), "w1", sig->result_digest(), 1700000000123),
                      sig->signature())
            .ok());
  t.set_result("changed");
  CHECK(Verify(t).code() == absl::StatusCode::kDataLoss);
  t = Stored(f, key->public_key());
  t.mutable_signature()->set_attempt(3);
  CHECK_THAT(std::string(Verify(t).message()), Catch::StartsWith("signature does not match public key"));
  // Claiming batch form for a single signature does not verify either.
  t = Stored(f, key->public_key());
  t.mutable_signature()->set_batch_size(1);
  t.mutable_signature()->set_batch_root(
      merkle::LeafHash(ResultLeaf(t.task_id(), sig->attempt(), sig->result_digest(), false)));
  CHECK(Verify(t).code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("The outbox signs the results of each message it takes as one batch and resends them as signed") {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  REQUIRE(key.ok());
  FakeClock clock;
  worker::ResultSigner signer(*key, "w1", &clock);
  worker::Outbox outbox(&clock);
  outbox.SignWith(&signer);
  int i = 0;
  for (pb::TaskStatus s : {pb::TASK_STATUS_SUCCESS, pb::TASK_STATUS_FAILED, pb::TASK_STATUS_CANCELLED,
                           pb::TASK_STATUS_TIMEOUT}) {
    pb::TaskFinished f = Finished(i++);
    f.set_status(s);
    f.set_permanent(s == pb::TASK_STATUS_FAILED);
    outbox.Finished(f);
  }
  outbox.Started(pb::TaskStarted());
  pb::WorkerMessage first;
  REQUIRE(outbox.Take(&first));
  CHECK(first.started_size() == 1);
  REQUIRE(first.finished_size() == 4);
  CHECK(signer.batches() == 1);
  CHECK(signer.results() == 4);
  for (const pb::TaskFinished& f : first.finished()) {
    INFO(f.task_id());
    CHECK(f.signature().batch_size() == 4);
    CHECK(f.signature().worker_device_id() == "w1");
    CHECK(f.signature().signed_at_ms() == clock.NowMs());
    CHECK(f.signature().permanent() == f.permanent());
    CHECK(f.signature().signature() == first.finished(0).signature().signature());
    CHECK(Verify(Stored(f, key->public_key())).ok());
  }

  // The next message is its own batch, signed at its own time.
  clock.Advance(absl::Seconds(1));
  outbox.Finished(Finished(7));
  pb::WorkerMessage second;
  REQUIRE(outbox.Take(&second));
  REQUIRE(second.finished_size() == 1);
  CHECK(second.finished(0).signature().batch_size() == 1);
  CHECK(second.finished(0).signature().proof_size() == 0);
  CHECK(second.finished(0).signature().signed_at_ms() == clock.NowMs());
  CHECK(Verify(Stored(second.finished(0), key->public_key())).ok());
  CHECK(signer.batches() == 2);

  // After a reconnect the unacknowledged results go again exactly as first signed (the
  // coordinator may already hold that signature), not in a new batch.
  outbox.Ack(first.finished(3).task_id(), first.finished(3).attempt());
  outbox.ResendInFlight();
  clock.Advance(absl::Seconds(1));
  outbox.Finished(Finished(8));
  pb::WorkerMessage resent;
  REQUIRE(outbox.Take(&resent));
  REQUIRE(resent.finished_size() == 5);
  CHECK(signer.batches() == 3);  // the new result only
  int fresh = 0;
  for (const pb::TaskFinished& f : resent.finished()) {
    INFO(f.task_id());
    if (f.task_id() == "task-8") {
      ++fresh;
      CHECK(f.signature().batch_size() == 1);
      CHECK(f.signature().signed_at_ms() == clock.NowMs());
    } else if (f.task_id() == "task-7") {
      CHECK(f.signature().SerializeAsString() == second.finished(0).signature().SerializeAsString());
    } else {
      bool same = false;
      for (const pb::TaskFinished& was : first.finished()) {
        same = same || (was.task_id() == f.task_id() &&
                        was.signature().SerializeAsString() == f.signature().SerializeAsString());
      }
      CHECK(same);
    }
    CHECK(Verify(Stored(f, key->public_key())).ok());
  }
  CHECK(fresh == 1);
}

TEST_CASE("Without a signer the outbox sends results unsigned") {
  worker::Outbox outbox;
  outbox.Finished(Finished(1));
  pb::WorkerMessage msg;
  REQUIRE(outbox.Take(&msg));
  REQUIRE(msg.finished_size() == 1);
  CHECK_FALSE(msg.finished(0).has_signature());
}

}  // namespace
}  // namespace rc
