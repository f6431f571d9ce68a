// Token files and the strings authentication reads from callers: the join/client token
// files (ReadTokenLines, ReadTokenFile), client token lines "ROLE TOKEN [NAME]", the
// authorization header (BearerToken) and peer addresses (IsLoopbackPeer). The input is
// the text of a token file; each of its lines is also tried as a header and as a peer.
// Invariants beyond "no crash": a parsed line prints and parses back the same; every
// token of a table that loads is found again and authenticates with its role and name;
// BearerToken returns a trimmed piece of its input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "fuzz/fuzz_check.h"

namespace {

bool Trimmed(absl::string_view s) { return absl::StripAsciiWhitespace(s) == s; }

void CheckHeaderAndPeer(absl::string_view text) {
  absl::string_view token = rc::BearerToken(text);
  if (!token.empty()) {
    RC_FUZZ_CHECK(token.data() >= text.data() && token.data() + token.size() <= text.data() + text.size(),
                  "BearerToken returned memory outside its input");
    RC_FUZZ_CHECK(Trimmed(token), "BearerToken returned untrimmed text");
  }
  (void)rc::IsLoopbackPeer(text);
}

void CheckLine(const std::string& line) {
  absl::StatusOr<rc::ClientToken> t = rc::ParseClientTokenLine(line);
  if (!t.ok()) {
    RC_FUZZ_CHECK(t.status().code() == absl::StatusCode::kInvalidArgument, "token line: only INVALID_ARGUMENT");
    return;
  }
  RC_FUZZ_CHECK(rc::ValidateToken("token", t->token).ok(), "accepted a token ValidateToken refuses");
  RC_FUZZ_CHECK(!t->name.empty(), "a client token without a name");
  // A generated name ("token-" + digest) is printed by leaving the name out: the prefix is
  // reserved, and parsing the line again must generate the same name.
  const bool generated = absl::StartsWith(t->name, "token-");
  absl::StatusOr<rc::ClientToken> again = rc::ParseClientTokenLine(
      absl::StrCat(rc::RoleName(t->role), " ", t->token, generated ? "" : " ", generated ? "" : t->name));
  RC_FUZZ_CHECK(again.ok() && again->role == t->role && again->token == t->token && again->name == t->name,
                "a client token line printed and parsed again differs");
}

void CheckTable(const std::vector<std::string>& lines) {
  std::vector<std::string> join;
  for (const std::string& l : lines) {
    if (rc::ValidateToken("join", l).ok()) join.push_back(l);
  }
  absl::StatusOr<rc::TokenTable> table = rc::TokenTable::Make(join, lines);
  if (!table.ok()) {
    // Join tokens are valid by construction, so only a client line can be refused.
    RC_FUZZ_CHECK(table.status().code() == absl::StatusCode::kInvalidArgument, "TokenTable: only INVALID_ARGUMENT");
    return;
  }
  for (const std::string& j : join) {
    RC_FUZZ_CHECK(table->JoinTokenValid(j), "a configured join token is not valid");
    RC_FUZZ_CHECK(rc::AuthenticateWorker(*table, absl::StrCat("Bearer ", j), "ipv4:192.0.2.1:1").ok(),
                  "a configured join token does not authenticate a worker");
  }
  for (const std::string& l : lines) {
    absl::StatusOr<rc::ClientToken> t = rc::ParseClientTokenLine(l);
    RC_FUZZ_CHECK(t.ok(), "TokenTable accepted a line ParseClientTokenLine refuses");
    const rc::ClientToken* found = table->FindClient(t->token);
    RC_FUZZ_CHECK(found != nullptr && found->name == t->name && found->role == t->role,
                  "a configured client token is not found as itself");
    absl::StatusOr<rc::Principal> who =
        rc::AuthenticateClient(*table, absl::StrCat("bearer  ", t->token, " "), "ipv4:192.0.2.1:1");
    RC_FUZZ_CHECK(who.ok() && who->role == t->role && who->name == t->name,
                  "a configured client token does not authenticate as itself");
  }
  RC_FUZZ_CHECK(table->FindClient("") == nullptr && !table->JoinTokenValid(""), "the empty token matched");
}

// The input as a file, for ReadTokenLines: a memfd, rewritten for each input.
std::string InputFile(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz_tokens", 0);
  RC_FUZZ_CHECK(fd >= 0, "memfd_create");
  RC_FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == static_cast<ssize_t>(size), "write memfd");
  return absl::StrCat("/proc/self/fd/", fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckHeaderAndPeer(text);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    CheckHeaderAndPeer(line);
    CheckLine(std::string(line));
  }

  const std::string path = InputFile(data, size);
  absl::StatusOr<std::vector<std::string>> lines = rc::ReadTokenLines(path);
  absl::StatusOr<std::string> first = rc::ReadTokenFile(path);
  if (!lines.ok()) {
    RC_FUZZ_CHECK(lines.status().code() == absl::StatusCode::kInvalidArgument, "ReadTokenLines of a readable file");
    RC_FUZZ_CHECK(!first.ok(), "ReadTokenFile accepted a file ReadTokenLines refuses");
    return 0;
  }
  for (const std::string& l : *lines) {
    RC_FUZZ_CHECK(!l.empty() && l[0] != '#' && Trimmed(l), "ReadTokenLines kept a blank, comment or untrimmed line");
  }
  if (first.ok()) RC_FUZZ_CHECK(*first == (*lines)[0], "ReadTokenFile is not the first line");
  CheckTable(*lines);
  return 0;
}
