// YAML configuration files (--config) of the coordinator, the worker and the CLIs.
// Invariants beyond "no crash": errors are INVALID_ARGUMENT and name the source; a
// coordinator or worker configuration that parses also passes Validate (the parsers
// promise a validated struct).
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "common/config.h"
#include "fuzz/fuzz_check.h"

namespace {

constexpr char kSource[] = "fuzz.yaml";

void CheckError(const absl::Status& s) {
  if (s.ok()) return;
  RC_FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "a config error that is not INVALID_ARGUMENT");
  RC_FUZZ_CHECK(absl::StrContains(s.message(), kSource), "a config error that does not name the file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<rc::CoordinatorConfig> coordinator = rc::ParseCoordinatorYaml(text, kSource);
  CheckError(coordinator.status());
  if (coordinator.ok()) RC_FUZZ_CHECK(rc::Validate(*coordinator).ok(), "accepted coordinator config is invalid");

  absl::StatusOr<rc::WorkerConfig> worker = rc::ParseWorkerYaml(text, kSource);
  CheckError(worker.status());
  if (worker.ok()) RC_FUZZ_CHECK(rc::Validate(*worker).ok(), "accepted worker config is invalid");

  // A client config's token_file is read at parse time: a fuzzer naming /dev/zero or a
  // FIFO would measure the filesystem, not the parser. Everything else is parsed (a
  // backslash could spell the key with an escape: "token\x5ffile").
  if (!absl::StrContains(text, "token_file") && !(absl::StrContains(text, "\\") && absl::StrContains(text, "token"))) {
    absl::StatusOr<rc::ClientConfig> client = rc::ParseClientYaml(text, kSource);
    CheckError(client.status());
    // A client may also name the worker's task socket (unix:PATH), so its own rule applies.
    if (client.ok()) RC_FUZZ_CHECK(rc::ValidateClientTarget("coordinator", client->coordinator).ok(), "bad coordinator");
  }
  return 0;
}
