#pragma once
// Helpers shared by the signed-result tests (result_signature_test, result_batch_test).
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/result_signature.h"

namespace rc::testing {

// The stored task a coordinator would make of `f` with signature `sig` and the key it
// recorded for the worker.
inline pb::Task Stored(const pb::TaskFinished& f, const pb::ResultSignature& sig, const std::string& public_key) {
  pb::Task t;
  t.set_task_id(f.task_id());
  t.set_status(f.status());
  t.set_result(f.result());
  t.set_error_message(f.error_message());
  t.set_exit_code(f.exit_code());
  t.set_stdout(f.stdout());
  t.set_stderr(f.stderr());
  *t.mutable_signature() = sig;
  t.mutable_signature()->set_public_key(public_key);
  return t;
}

// What `retire-cluster verify` checks of a stored task.
inline absl::Status Verify(const pb::Task& t) {
  return VerifyOutcome(t.task_id(), OutcomeOf(t), t.signature(), t.signature().public_key());
}

// The length-prefixed encoding of common/result_signature.h, written out independently.
inline std::string Field(absl::string_view s) {
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[7 - i] = static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return len + std::string(s);
}

}  // namespace rc::testing
