// Task JSON as clients send it (the HTTP bridge's POST /tasks body, a batch element) and
// as the CLI checks --payload. Invariants beyond "no crash":
//  - ValidateJsonObject accepts only blank text or one JSON object;
//  - a spec TaskSpecFromJson accepts has an object payload (or none);
//  - a spec that also passes submit-time validation, shown as the task object users read
//    (TaskToJson, dumped and parsed again), parses back to the same normalised spec.
#include <cstdint>
#include <string>

#include "common/json_view.h"
#include "common/task_defaults.h"
#include "common/task_spec_json.h"
#include "coordinator/core/task_validation.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

namespace pb = ::retire_cluster::v1;
using nlohmann::json;

bool Blank(absl::string_view text) { return text.find_first_not_of(" \t\r\n") == absl::string_view::npos; }

void CheckPayloadValidation(absl::string_view text) {
  absl::Status s = rc::ValidateJsonObject(text, "--payload");
  if (!s.ok()) {
    RC_FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "ValidateJsonObject: only INVALID_ARGUMENT");
    return;
  }
  if (Blank(text)) return;
  json j = json::parse(text, nullptr, false);
  RC_FUZZ_CHECK(!j.is_discarded() && j.is_object(), "ValidateJsonObject accepted something that is not an object");
  // Deeper nesting would overflow the stack when printed (regression: regression_deep_payload.json).
  RC_FUZZ_CHECK(rc::CheckJsonDepth(j, "payload").ok(), "ValidateJsonObject accepted JSON nested too deep");
  (void)j.dump();
}

// The spec as the task object shows it: defaults filled in (DESIGN.md's task model).
pb::TaskSpec AsShown(pb::TaskSpec spec) {
  pb::Requirements* r = spec.mutable_requirements();
  if (!r->has_timeout_seconds()) r->set_timeout_seconds(rc::kDefaultTimeoutSeconds);
  if (!r->has_max_retries()) r->set_max_retries(rc::kDefaultMaxRetries);
  for (pb::Dependency& d : *spec.mutable_after()) {
    if (d.condition() == pb::DEPENDENCY_CONDITION_UNSPECIFIED) d.set_condition(pb::DEPENDENCY_CONDITION_OK);
  }
  return spec;
}

void CheckRoundTrip(const pb::TaskSpec& spec) {
  pb::TaskSpec normalized = spec;
  if (!rc::coordinator::ValidateAndNormalize(&normalized).ok()) return;
  json payload = json::parse(normalized.payload(), nullptr, false);
  RC_FUZZ_CHECK(!payload.is_discarded() && payload.is_object(), "accepted payload is not a JSON object");

  pb::Task task;
  *task.mutable_spec() = normalized;
  const std::string shown = rc::TaskToJson(task).dump();
  json back = json::parse(shown, nullptr, false);
  RC_FUZZ_CHECK(!back.is_discarded(), "TaskToJson printed invalid JSON");
  json submitted = json::object();
  for (const char* key : {"task_type", "payload", "priority", "requirements", "metadata", "idempotency_key"}) {
    submitted[key] = back[key];
  }
  for (const char* key : {"after", "parent_close"}) {  // shown only when set
    if (back.contains(key)) submitted[key] = back[key];
  }
  absl::StatusOr<pb::TaskSpec> again = rc::TaskSpecFromJson(submitted);
  RC_FUZZ_CHECK(again.ok(), "the task object's fields are refused when submitted again");
  RC_FUZZ_CHECK(rc::coordinator::ValidateAndNormalize(&*again).ok(), "resubmitted spec fails validation");
  RC_FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(AsShown(normalized), *again),
                "spec -> task JSON -> spec changed the spec");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  CheckPayloadValidation(text);
  (void)rc::ParseOrString(text);  // never throws

  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  absl::StatusOr<pb::TaskSpec> spec = rc::TaskSpecFromJson(j);
  if (!spec.ok()) {
    RC_FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument, "TaskSpecFromJson: only INVALID_ARGUMENT");
    return 0;
  }
  RC_FUZZ_CHECK(spec->payload().empty() || rc::ValidateJsonObject(spec->payload(), "payload").ok(),
                "TaskSpecFromJson stored a payload that is not a JSON object");
  CheckRoundTrip(*spec);
  return 0;
}
