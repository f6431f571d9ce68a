#include "common/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "common/yaml_fields.h"

namespace rc {
namespace {

constexpr size_t kMinTokenLength = 16;

std::string Digest(absl::string_view text) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

// Same length always (SHA-256 digests), so CRYPTO_memcmp's time depends on neither text.
bool SameDigest(const std::string& a, const std::string& b) {
  return CRYPTO_memcmp(a.data(), b.data(), SHA256_DIGEST_LENGTH) == 0;
}

absl::StatusOr<Role> ParseRole(absl::string_view s) {
  if (s == "submit") return Role::kSubmit;
  if (s == "read") return Role::kRead;
  if (s == "admin") return Role::kAdmin;
  // Not quoted: a line missing its role would show its token here.
  return absl::InvalidArgumentError("the first field must be the role: submit, read or admin");
}

absl::string_view ActionName(Action a) {
  switch (a) {
    case Action::kSubmit: return "submit tasks";
    case Action::kReadTask: return "read this task";
    case Action::kListTasks: return "list tasks";
    case Action::kReadCluster: return "read workers and stats";
    case Action::kCancel: return "cancel this task";
    case Action::kDrain: return "drain workers";
    case Action::kPublishJsTasks: return "publish or remove published js tasks";
  }
  return "do this";
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kSubmit: return "submit";
    case Role::kRead: return "read";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

absl::Status Authorize(const Principal& who, Action action, absl::string_view task_owner) {
  auto denied = [&](absl::string_view why) {
    return absl::PermissionDeniedError(
        absl::StrCat("token '", who.name, "' (role ", RoleName(who.role), ") may not ", ActionName(action), why));
  };
  if (who.task.has_value() &&
      (action == Action::kReadCluster || action == Action::kDrain || action == Action::kPublishJsTasks)) {
    return absl::PermissionDeniedError(absl::StrCat("a task token (", who.task->task_id, ") may not ", ActionName(action),
                                                    ": it may only submit children and read, wait for or cancel "
                                                    "tasks of its own subtree"));
  }
  switch (who.role) {
    case Role::kAdmin:
      return absl::OkStatus();
    case Role::kRead:
      if (action == Action::kReadTask || action == Action::kListTasks || action == Action::kReadCluster) {
        return absl::OkStatus();
      }
      return denied(": the read role is read-only");
    case Role::kSubmit:
      switch (action) {
        case Action::kSubmit:
        case Action::kListTasks:  // filtered to its own tasks by the caller
        case Action::kReadCluster:
        case Action::kPublishJsTasks:  // its own names only (the caller checks the owner)
          return absl::OkStatus();
        case Action::kReadTask:
        case Action::kCancel:
          if (task_owner == who.name) return absl::OkStatus();
          return denied(": it belongs to another submitter");
        case Action::kDrain:
          return denied(": that needs the admin role");
      }
  }
  return denied("");
}

absl::Status ValidateToken(absl::string_view what, absl::string_view token) {
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": a token must be at least ", kMinTokenLength,
                                                   " characters (make one with `openssl rand -hex 32`)"));
  }
  for (char c : token) {
    if (c <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": a token must be printable characters without spaces"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ClientToken> ParseClientTokenLine(absl::string_view line) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.size() < 2 || parts.size() > 3) {
    return absl::InvalidArgumentError("expected \"ROLE TOKEN [NAME]\" on each line");
  }
  ClientToken t;
  ASSIGN_OR_RETURN(t.role, ParseRole(parts[0]));
  RETURN_IF_ERROR(ValidateToken(absl::StrCat("the ", parts[0], " token"), parts[1]));
  t.token = std::string(parts[1]);
  if (parts.size() == 3) {
    t.name = std::string(parts[2]);
    if (absl::StartsWith(t.name, "token-")) {
      return absl::InvalidArgumentError(absl::StrCat("name '", t.name, "': the prefix token- is kept for unnamed tokens"));
    }
    if (t.name.size() > 64) return absl::InvalidArgumentError("a name is at most 64 characters");
    for (char c : t.name) {
      if (c <= ' ' || c == 0x7f) return absl::InvalidArgumentError("a name must be printable characters");
    }
  } else {
    t.name = absl::StrCat("token-", absl::BytesToHexString(Digest(t.token).substr(0, 4)));
  }
  return t;
}

absl::StatusOr<std::vector<std::string>> ReadTokenLines(const std::string& path) {
  std::string text;
  RETURN_IF_ERROR(ReadFile(path, &text));
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    lines.emplace_back(line);
  }
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": holds no token"));
  return lines;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadTokenLines(path));
  RETURN_IF_ERROR(ValidateToken(path, lines[0]));
  return lines[0];
}

absl::StatusOr<TokenTable> TokenTable::Make(const std::vector<std::string>& join_tokens,
                                            const std::vector<std::string>& client_token_lines) {
  TokenTable table;
  for (const std::string& t : join_tokens) {
    RETURN_IF_ERROR(ValidateToken("join token", t));
    table.join_.push_back(Digest(t));
  }
  for (const std::string& line : client_token_lines) {
    ASSIGN_OR_RETURN(ClientToken t, ParseClientTokenLine(line));
    std::string digest = Digest(t.token);
    for (const ClientEntry& e : table.clients_) {
      if (e.digest == digest) {
        return absl::InvalidArgumentError(
            absl::StrCat("client tokens '", e.token.name, "' and '", t.name, "' are the same token"));
      }
    }
    table.clients_.push_back({std::move(digest), std::move(t)});
  }
  return table;
}

bool TokenTable::JoinTokenValid(absl::string_view presented) const {
  if (presented.empty()) return false;
  std::string digest = Digest(presented);
  bool found = false;
  for (const std::string& d : join_) found |= SameDigest(d, digest);
  return found;
}

const ClientToken* TokenTable::FindClient(absl::string_view presented) const {
  if (presented.empty()) return nullptr;
  std::string digest = Digest(presented);
  const ClientToken* found = nullptr;
  for (const ClientEntry& e : clients_) {
    if (SameDigest(e.digest, digest)) found = &e.token;
  }
  return found;
}

absl::string_view BearerToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.size() < 7 || !absl::EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) return "";
  return absl::StripAsciiWhitespace(authorization.substr(7));
}

bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:")) return true;
  // gRPC: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", or percent-encoded "ipv6:%5B::1%5D:5000";
  // the HTTP bridge: a bare address ("127.0.0.1", "::1", "::ffff:127.0.0.1").
  std::string text(peer);
  const bool with_port = absl::ConsumePrefix(&peer, "ipv4:") || absl::ConsumePrefix(&peer, "ipv6:");
  text = absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5D", "]"}, {"%5b", "["}, {"%5d", "]"}, {"%25", "%"}});
  absl::string_view host = text;
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    host = host.substr(1, close - 1);
  } else if (with_port && host.find(':') != host.rfind(':')) {
    return false;  // an IPv6 address with a port must be bracketed
  } else if (with_port) {
    host = host.substr(0, host.rfind(':'));
  }
  host = host.substr(0, host.find('%'));  // a zone ("fe80::1%eth0")
  const std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

absl::StatusOr<Principal> AuthenticateClient(const TokenTable& tokens, absl::string_view authorization,
                                             absl::string_view peer, bool peer_certified) {
  if (!tokens.has_client_tokens()) {
    if (peer_certified || IsLoopbackPeer(peer)) return Principal{Role::kAdmin, ""};
    return absl::UnauthenticatedError(
        "this coordinator has no client tokens and serves only loopback clients (or ones with a client "
        "certificate, under mTLS); configure client_tokens_file (--client-tokens-file) to accept others");
  }
  absl::string_view token = BearerToken(authorization);
  if (token.empty()) {
    return absl::UnauthenticatedError("missing token: send \"authorization: Bearer TOKEN\" (--token or $RETIRE_CLUSTER_TOKEN)");
  }
  const ClientToken* t = tokens.FindClient(token);
  if (t == nullptr) return absl::UnauthenticatedError("unknown token");
  return Principal{t->role, t->name};
}

absl::Status AuthenticateWorker(const TokenTable& tokens, absl::string_view authorization, absl::string_view peer,
                                bool peer_certified) {
  if (!tokens.has_join_tokens()) {
    if (peer_certified || IsLoopbackPeer(peer)) return absl::OkStatus();
    return absl::UnauthenticatedError(
        "this coordinator has no join tokens and accepts only workers on this machine (or ones with a "
        "client certificate, under mTLS); configure join_token_file (--join-token-file) and give workers --token-file");
  }
  absl::string_view token = BearerToken(authorization);
  if (token.empty()) return absl::UnauthenticatedError("missing join token: start the worker with --token-file");
  if (!tokens.JoinTokenValid(token)) return absl::UnauthenticatedError("unknown join token");
  return absl::OkStatus();
}

}  // namespace rc
