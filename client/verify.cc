#include "client/verify.h"

#include <ostream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/cli_common.h"
#include "common/clock.h"
#include "common/json_view.h"
#include "common/result_signature.h"
#include "common/task_names.h"

namespace rc::client {
namespace {

// The outcome as the worker reported it. For a task that failed for good the
// coordinator appended a note to the worker's error message (and named an empty one
// "handler failed"): the candidates with that note undone, tried after the stored text.
std::vector<std::string> ReportedErrorMessages(const pb::Task& task) {
  std::vector<std::string> out;
  if (task.status() != pb::TASK_STATUS_FAILED) return out;
  std::optional<std::string> why = StripFinalFailureNote(task.error_message(), task.signature().attempt());
  if (!why.has_value()) return out;
  out.push_back(*why);
  if (*why == "handler failed") out.push_back("");
  return out;
}

absl::Status CheckOutcome(const pb::Task& task) {
  const pb::ResultSignature& sig = task.signature();
  Outcome outcome = OutcomeOf(task);
  absl::Status s = VerifyOutcome(task.task_id(), outcome, sig, sig.public_key());
  if (s.code() != absl::StatusCode::kDataLoss) return s;
  for (const std::string& reported : ReportedErrorMessages(task)) {
    outcome.error_message = reported;
    if (absl::Status again = VerifyOutcome(task.task_id(), outcome, sig, sig.public_key()); again.ok()) return again;
  }
  return s;
}

}  // namespace

absl::StatusOr<VerifiedResult> VerifyTask(const pb::Task& task, const pb::Worker* current,
                                          const std::optional<std::string>& pinned) {
  const std::string& id = task.task_id();
  if (!IsTerminal(task.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", id, " is not finished (", StatusName(task.status()), "): nothing to verify yet"));
  }
  const pb::ResultSignature& sig = task.signature();
  if (sig.signature().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", id, " has no signature: its outcome (", StatusName(task.status()),
        ") was decided by the coordinator (a cancel, a lost worker) or reported by a worker that does not sign"));
  }
  if (sig.public_key().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", id, ": the coordinator recorded no public key for worker ", sig.worker_device_id()));
  }
  if (sig.worker_device_id() != task.worker_device_id()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", id, ": signed by worker ", sig.worker_device_id(),
                                                   " but its outcome is recorded from ", task.worker_device_id()));
  }
  if (sig.attempt() != task.attempts()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", id, ": the signature is for attempt ", sig.attempt(),
                                                   " but the outcome is from attempt ", task.attempts()));
  }
  if (absl::Status s = CheckOutcome(task); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("task ", id, ": ", s.message()));
  }
  // A task fails for good either with its retries used up (the coordinator's note) or
  // because the worker signed the failure permanent; anything else is a coordinator
  // that stopped retrying on its own.
  if (task.status() == pb::TASK_STATUS_FAILED && !sig.permanent() &&
      !StripFinalFailureNote(task.error_message(), sig.attempt()).has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task ", id, ": failed at attempt ", sig.attempt(),
        " with retries left, but the worker did not sign the failure permanent"));
  }
  if (pinned.has_value() && *pinned != sig.public_key()) {
    return absl::PermissionDeniedError(absl::StrCat("task ", id, ": signed by key ", PublicKeyHex(sig.public_key()),
                                                    ", not the pinned key ", PublicKeyHex(*pinned)));
  }
  if (current != nullptr && !current->capabilities().public_key().empty() &&
      current->capabilities().public_key() != sig.public_key()) {
    return absl::PermissionDeniedError(
        absl::StrCat("task ", id, ": worker ", sig.worker_device_id(), " now presents key ",
                     PublicKeyHex(current->capabilities().public_key()), ", not the key ",
                     PublicKeyHex(sig.public_key()), " recorded when it signed this result"));
  }
  return VerifiedResult{sig.worker_device_id(), sig.attempt(), sig.signed_at_ms(), sig.public_key()};
}

int RunVerify(const ParsedFlags& f, Client& client, std::ostream& out, std::ostream& err) {
  const std::vector<std::string>& pos = f.positional();
  if (pos.size() != 1) return Fail(err, absl::InvalidArgumentError("verify: expected one task id"));
  std::optional<std::string> pinned;
  if (auto v = f.Get("public-key")) {
    absl::StatusOr<std::string> key = ParsePublicKey(*v);
    if (!key.ok()) return Fail(err, absl::InvalidArgumentError(absl::StrCat("--public-key: ", key.status().message())));
    pinned = *std::move(key);
  }
  absl::StatusOr<pb::Task> task = client.Get(pos[0]);
  if (!task.ok()) return Fail(err, task.status());
  std::optional<pb::Worker> current;
  if (const std::string& device = task->signature().worker_device_id(); !device.empty()) {
    absl::StatusOr<std::vector<pb::Worker>> listed = client.Workers(device);
    if (listed.ok() && !listed->empty()) {
      current = listed->front();
    } else if (!listed.ok() && !absl::IsNotFound(listed.status())) {
      err << "note: not compared with the key worker " << device << " presents now: " << listed.status().message()
          << "\n";
    }
  }
  absl::StatusOr<VerifiedResult> v = VerifyTask(*task, current ? &*current : nullptr, pinned);
  if (f.Has("json")) {
    Json j = {{"task_id", task->task_id()}, {"verified", v.ok()}};
    if (v.ok()) {
      j["worker_device_id"] = v->worker_device_id;
      j["attempt"] = v->attempt;
      j["signed_at"] = FormatTimeMs(v->signed_at_ms);
      j["public_key"] = PublicKeyHex(v->public_key);
      j["result_digest"] = task->signature().result_digest();
      if (const pb::ResultSignature& sig = task->signature(); sig.batch_size() > 0) {  // signed in a batch
        j["batch_root"] = absl::BytesToHexString(sig.batch_root());
        j["leaf_index"] = sig.leaf_index();
        j["batch_size"] = sig.batch_size();
      }
    } else {
      j["error"] = std::string(v.status().message());
    }
    out << j.dump(2) << "\n";
  }
  if (!v.ok()) {
    err << "error: not verified: " << v.status().message() << "\n";
    return kExitTaskFailed;
  }
  if (!f.Has("json")) {
    out << "verified: signed by " << v->worker_device_id << " at " << FormatTimeMs(v->signed_at_ms) << " (attempt "
        << v->attempt << ", key " << PublicKeyHex(v->public_key) << ")\n";
  }
  return kExitOk;
}

}  // namespace rc::client
