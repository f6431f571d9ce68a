#pragma once
// Tokens and roles (DESIGN.md "Security options"). Workers present a join token; clients
// present a bearer token bound to a role. Tokens are compared in constant time and never
// logged: a token is named by its NAME (or a short digest of it), never by its text.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rc {

// submit: submit, and read or cancel its own tasks. read: read everything. admin:
// everything, including cancelling others' tasks and draining workers.
enum class Role { kSubmit, kRead, kAdmin };

absl::string_view RoleName(Role role);

struct ClientToken {
  Role role = Role::kRead;
  std::string token;
  // The submitter's name: tasks it submits carry it as `owner`. Tokens with the same name
  // act as one submitter (rotate a token by adding the new one under the old name).
  std::string name;
};

// A call made with a task token (DESIGN.md "Workflows"): the task attempt it acts as.
struct TaskCaller {
  std::string task_id;
  int32_t attempt = 0;
  std::string root_task_id;
  int32_t depth = 0;
};

// Who a call comes from, once authenticated.
struct Principal {
  Role role = Role::kAdmin;
  std::string name;  // "" for an unauthenticated loopback caller (no client tokens configured)
  // Set for a task token: role submit, `name` the task's owner. It may submit children and
  // read, wait for and cancel only its own subtree (the client API checks the subtree);
  // workers, stats, metrics and drains are refused.
  std::optional<TaskCaller> task = std::nullopt;
};

// What a call wants to do; Authorize decides.
enum class Action {
  kSubmit,       // submit tasks
  kReadTask,     // read one task (owner given)
  kListTasks,    // list tasks (the submit role sees only its own)
  kReadCluster,  // workers and stats
  kCancel,       // cancel one task (owner given)
  kDrain,        // drain or undrain a worker
  kPublishJsTasks,  // publish or remove published JS tasks (a name's owner is the caller's check)
};

// The rule: OK or PERMISSION_DENIED naming the role and what it may not do. For a task
// caller this is necessary, not sufficient: reading or cancelling a task also needs the
// task in the caller's subtree, which only the task tells (the client API asks it).
absl::Status Authorize(const Principal& who, Action action, absl::string_view task_owner = "");

// Tokens must be at least 16 printable non-space characters (e.g. `openssl rand -hex 32`).
// INVALID_ARGUMENT naming `what`, never quoting the token.
absl::Status ValidateToken(absl::string_view what, absl::string_view token);

// "ROLE TOKEN [NAME]"; NAME defaults to "token-" plus 8 hex digits of the token's SHA-256.
absl::StatusOr<ClientToken> ParseClientTokenLine(absl::string_view line);

// Lines of a token file without blank lines and "#" comments, trimmed. NOT_FOUND or
// PERMISSION_DENIED naming the path; INVALID_ARGUMENT if it holds no token.
absl::StatusOr<std::vector<std::string>> ReadTokenLines(const std::string& path);
// The single token of a worker's or client's token file (its first line), validated.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// The configured tokens, as SHA-256 digests, looked up in constant time (every entry is
// compared, with CRYPTO_memcmp).
class TokenTable {
 public:
  // INVALID_ARGUMENT for a malformed line or a token that is too short, or one text
  // used for two client tokens.
  static absl::StatusOr<TokenTable> Make(const std::vector<std::string>& join_tokens,
                                         const std::vector<std::string>& client_token_lines);

  bool has_join_tokens() const { return !join_.empty(); }
  bool has_client_tokens() const { return !clients_.empty(); }
  bool JoinTokenValid(absl::string_view presented) const;
  // nullptr when no configured client token matches.
  const ClientToken* FindClient(absl::string_view presented) const;

 private:
  struct ClientEntry {
    std::string digest;
    ClientToken token;
  };
  std::vector<std::string> join_;  // digests
  std::vector<ClientEntry> clients_;
};

// "Bearer TOKEN" (scheme case-insensitive) -> TOKEN; "" when absent or another scheme.
absl::string_view BearerToken(absl::string_view authorization);

// A gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") on this machine.
bool IsLoopbackPeer(absl::string_view peer);

// Authenticates one call from its authorization value and its peer: with client tokens,
// the token decides (UNAUTHENTICATED when missing or unknown); without, only loopback
// peers and peers that presented a verified client certificate (`peer_certified`, under
// mTLS) are served, as admin; others get UNAUTHENTICATED saying how to configure tokens.
absl::StatusOr<Principal> AuthenticateClient(const TokenTable& tokens, absl::string_view authorization,
                                             absl::string_view peer, bool peer_certified = false);
// The same for a worker's stream and the join tokens.
absl::Status AuthenticateWorker(const TokenTable& tokens, absl::string_view authorization, absl::string_view peer,
                                bool peer_certified = false);

}  // namespace rc
