// Task tokens (coordinator/core/task_tokens.h): their text, parsing, digest and the match
// against a task's current attempt; and the core minting one per attempt at dispatch.
#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"

#include "coordinator/core/task_tokens.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

const std::string kSecret(kTaskTokenSecretBytes, '\x5a');

pb::Task RunningTask(const std::string& id, int32_t attempt, const std::string& token) {
  pb::Task t;
  t.set_task_id(id);
  t.set_attempts(attempt);
  t.set_status(pb::TASK_STATUS_RUNNING);
  t.set_attempt_token_sha256(TaskTokenSha256(token));
  return t;
}

TEST_CASE("A task token's text names the task and attempt, and carries 64 hex digits of secret") {
  const std::string token = FormatTaskToken("task-0123456789abcdef", 3, kSecret);
  CHECK(token == "rct1.task-0123456789abcdef.3.5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
  CHECK(IsTaskToken(token));
  CHECK_FALSE(IsTaskToken("alice-token-0123456789abcdef"));
  absl::StatusOr<ParsedTaskToken> p = ParseTaskToken(token);
  REQUIRE(p.ok());
  CHECK(p->task_id == "task-0123456789abcdef");
  CHECK(p->attempt == 3);
  // An id with dots still parses: the attempt and secret are taken from the right.
  p = ParseTaskToken(FormatTaskToken("a.b", 12, kSecret));
  REQUIRE(p.ok());
  CHECK(p->task_id == "a.b");
  CHECK(p->attempt == 12);
}

TEST_CASE("Malformed task tokens are refused naming what is wrong, never quoting the token") {
  const std::string hex(64, 'a');
  struct Case {
    std::string token, says;
  };
  const Case cases[] = {
      {"rct2.task-1.1." + hex, "starts with 'rct1.'"},
      {"rct1." + hex, "rct1.<task id>.<attempt>.<secret>"},
      {"rct1.1." + hex, "rct1.<task id>.<attempt>.<secret>"},
      {"rct1.task-1.1.abc", "64 hex digits"},
      {"rct1.task-1.1." + std::string(63, 'a') + "g", "hex digits"},
      {"rct1.task-1.0." + hex, "positive number"},
      {"rct1.task-1.-1." + hex, "positive number"},
      {"rct1.task-1.x." + hex, "positive number"},
      {"rct1.task-1.99999999999." + hex, "positive number"},
  };
  for (const Case& c : cases) {
    INFO(c.token);
    absl::StatusOr<ParsedTaskToken> p = ParseTaskToken(c.token);
    REQUIRE(p.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(p.status().message()), Catch::Contains(c.says));
    CHECK_THAT(std::string(p.status().message()), !Catch::Contains(hex.substr(0, 16)));
  }
}

TEST_CASE("Minted tokens differ every time and their digest is SHA-256 of the whole text") {
  absl::StatusOr<MintedToken> a = MintTaskToken("task-1", 1);
  absl::StatusOr<MintedToken> b = MintTaskToken("task-1", 1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->text != b->text);
  CHECK(a->text.size() == std::string("rct1.task-1.1.").size() + 64);
  CHECK(a->sha256.size() == 32);
  CHECK(a->sha256 == TaskTokenSha256(a->text));
  CHECK(a->sha256 != b->sha256);
  // The well-known digest of "abc": the text is hashed as is.
  CHECK(absl::BytesToHexString(TaskTokenSha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  absl::StatusOr<ParsedTaskToken> p = ParseTaskToken(a->text);
  REQUIRE(p.ok());
  CHECK(p->task_id == "task-1");
}

TEST_CASE("A token matches only its task's current attempt while it is assigned or running") {
  const std::string token = FormatTaskToken("task-1", 2, kSecret);
  const ParsedTaskToken parsed = *ParseTaskToken(token);
  const std::string digest = TaskTokenSha256(token);
  pb::Task t = RunningTask("task-1", 2, token);
  CHECK(TaskTokenMatches(t, parsed, digest));
  t.set_status(pb::TASK_STATUS_ASSIGNED);
  CHECK(TaskTokenMatches(t, parsed, digest));

  for (pb::TaskStatus ended : {pb::TASK_STATUS_QUEUED, pb::TASK_STATUS_PENDING, pb::TASK_STATUS_SUCCESS,
                               pb::TASK_STATUS_FAILED, pb::TASK_STATUS_CANCELLED, pb::TASK_STATUS_TIMEOUT}) {
    t.set_status(ended);
    CHECK_FALSE(TaskTokenMatches(t, parsed, digest));
  }
  t = RunningTask("task-1", 3, token);  // a later attempt runs: the old token is void
  CHECK_FALSE(TaskTokenMatches(t, parsed, digest));
  t = RunningTask("task-2", 2, token);  // another task
  CHECK_FALSE(TaskTokenMatches(t, parsed, digest));
  t = RunningTask("task-1", 2, token);
  const std::string other = FormatTaskToken("task-1", 2, std::string(kTaskTokenSecretBytes, '\x01'));
  CHECK_FALSE(TaskTokenMatches(t, *ParseTaskToken(other), TaskTokenSha256(other)));  // a wrong secret
  t.clear_attempt_token_sha256();  // none issued, or cleared when the attempt ended
  CHECK_FALSE(TaskTokenMatches(t, parsed, digest));
  CHECK_FALSE(TaskTokenMatches(t, parsed, ""));
}

TEST_CASE("Dispatch mints a token per attempt: the record keeps its digest, clients never see it") {
  Fixture f;
  const std::string id = f.Submit("echo");
  auto link = std::make_shared<FakeLink>();
  const uint64_t epoch = f.Join("w1", 1, link);
  REQUIRE(link->assigned.size() == 1);
  const pb::Assignment first = link->assigned[0];
  CHECK(IsTaskToken(first.task_token()));
  CHECK(ParseTaskToken(first.task_token())->task_id == id);
  CHECK(ParseTaskToken(first.task_token())->attempt == 1);
  CHECK(first.root_task_id() == id);
  CHECK(first.parent_task_id().empty());
  CHECK(first.depth() == 0);

  // The stored record holds the digest (not the text); what clients read holds neither.
  // (An assignment is written once it has run kAssignmentWriteDelayMs, at a tick.)
  f.PassBackoff(absl::Milliseconds(50));
  std::optional<pb::Task> stored = *f.store.Get(id);
  REQUIRE(stored.has_value());
  CHECK(stored->attempt_token_sha256() == TaskTokenSha256(first.task_token()));
  CHECK(stored->DebugString().find(first.task_token()) == std::string::npos);
  CHECK(f.Get(id).attempt_token_sha256().empty());

  absl::StatusOr<TaskTokenHolder> holder = f.core.CheckTaskToken(first.task_token());
  REQUIRE(holder.ok());
  CHECK(holder->task_id == id);
  CHECK(holder->attempt == 1);
  CHECK(holder->root_task_id == id);
  CHECK(holder->depth == 0);

  // The worker is lost: the next attempt gets a new token, and the first one is void.
  pb::WorkerMessage bye;
  bye.set_deregister(true);
  f.core.HandleWorkerMessage("w1", epoch, bye);
  f.PassBackoff(absl::Seconds(2));
  auto link2 = std::make_shared<FakeLink>();
  const uint64_t epoch2 = f.Join("w2", 1, link2);
  REQUIRE(link2->assigned.size() == 1);
  const pb::Assignment second = link2->assigned[0];
  CHECK(second.attempt() == 2);
  CHECK(second.task_token() != first.task_token());
  CHECK(f.core.CheckTaskToken(second.task_token()).ok());
  absl::StatusOr<TaskTokenHolder> old = f.core.CheckTaskToken(first.task_token());
  CHECK(old.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(old.status().message() == "task token is not valid (its attempt has ended, or it was never issued)");

  // Once the attempt ends, its token is void too; a malformed one reads the same.
  f.Finish("w2", epoch2, second);
  CHECK(f.core.CheckTaskToken(second.task_token()).status().message() == old.status().message());
  CHECK(f.core.CheckTaskToken("rct1.garbage").status().message() == old.status().message());
}

TEST_CASE("A running attempt's token stays valid across a coordinator restart, from the stored digest") {
  Fixture f;
  const std::string id = f.Submit("echo");
  auto link = std::make_shared<FakeLink>();
  f.Join("w1", 1, link);
  REQUIRE(link->assigned.size() == 1);
  const std::string token = link->assigned[0].task_token();
  f.PassBackoff(absl::Milliseconds(50));  // the assignment is written at a tick 50 ms on

  Coordinator restarted(Fixture::Options(), &f.store, &f.clock);
  REQUIRE(restarted.RecoverFromStore().ok());
  absl::StatusOr<TaskTokenHolder> holder = restarted.CheckTaskToken(token);
  REQUIRE(holder.ok());
  CHECK(holder->task_id == id);
  CHECK(holder->attempt == 1);
  CHECK(restarted.GetTask(id)->attempt_token_sha256().empty());
  restarted.Shutdown();
}

}  // namespace
}  // namespace rc::coordinator
