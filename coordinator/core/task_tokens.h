#pragma once
// Task tokens (DESIGN.md "Workflows"): one per attempt, made at dispatch and handed to the
// worker in the Assignment, so the attempt's processes can call the cluster as their task.
// The text is "rct1.<task_id>.<attempt>.<64 hex digits of secret>": the id and attempt
// let the coordinator find the task without a table of tokens, and the secret is what
// authenticates. The coordinator keeps only SHA-256 of the whole text, in the task's
// record (Task.attempt_token_sha256), so a restart keeps a running attempt's token valid;
// the plaintext is never stored or logged. Valid only while that attempt is ASSIGNED or
// RUNNING: a new attempt gets a new token and the old one stops matching.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "retire_cluster/v1/task.pb.h"

namespace rc::coordinator {

namespace pb = ::retire_cluster::v1;

inline constexpr absl::string_view kTaskTokenPrefix = "rct1.";
inline constexpr size_t kTaskTokenSecretBytes = 32;  // 64 hex digits

// Whether a bearer token is a task token (by its prefix; not whether it is valid).
bool IsTaskToken(absl::string_view token);

// A freshly made token and the digest the task's record keeps.
struct MintedToken {
  std::string text;    // given to the worker only
  std::string sha256;  // 32 raw bytes: Task.attempt_token_sha256
};

// The token text for `secret` (raw bytes, hex-encoded into it). Pure: tests and MintTaskToken.
std::string FormatTaskToken(absl::string_view task_id, int32_t attempt, absl::string_view secret);
// A token with kTaskTokenSecretBytes from OpenSSL's CSPRNG (drawn in blocks; thread-safe). INTERNAL when RAND_bytes fails
// (no token is better than a guessable one).
absl::StatusOr<MintedToken> MintTaskToken(absl::string_view task_id, int32_t attempt);

// SHA-256 of the whole token text, raw (32 bytes).
std::string TaskTokenSha256(absl::string_view token);

// What a token's text says (not yet checked against the task).
struct ParsedTaskToken {
  std::string task_id;
  int32_t attempt = 0;
};
// INVALID_ARGUMENT naming what is malformed (never quoting the token).
absl::StatusOr<ParsedTaskToken> ParseTaskToken(absl::string_view token);

// Whether a token (parsed as `parsed`, hashed as `presented_sha256`) is the current
// attempt's token of `task`: the same task and attempt, the attempt still ASSIGNED or
// RUNNING, and the digest equal to the stored one (compared in constant time). Pure.
bool TaskTokenMatches(const pb::Task& task, const ParsedTaskToken& parsed, absl::string_view presented_sha256);

// The attempt a valid token belongs to (Coordinator::CheckTaskToken): a caller acting
// as that task, with the task's owner.
struct TaskTokenHolder {
  std::string task_id;
  int32_t attempt = 0;
  std::string owner;
  std::string root_task_id;
  int32_t depth = 0;
};
// The holder of `task`'s current attempt. Pure.
TaskTokenHolder HolderOf(const pb::Task& task);

// The one refusal for a token that does not match, whatever the reason: a caller learns
// nothing about which tasks exist or which attempts ran.
absl::Status InvalidTaskToken();

}  // namespace rc::coordinator
