// Tokens and roles: the pure rules (common/auth.h) and how the coordinator core applies
// them (owners, per-owner limits and idempotency keys, drain, workers restricted to
// submitters).
#include <catch2/catch.hpp>

#include "common/auth.h"
#include "coordinator/api/client_api.h"
#include "coordinator_fixture.h"

namespace rc {
namespace {

const std::string kAdmin = "admin-token-0123456789abcdef";
const std::string kAlice = "alice-token-0123456789abcdef";
const std::string kBob = "bob-token-0123456789abcdef00";
const std::string kReader = "read-token-0123456789abcdef0";
const std::string kJoin = "join-token-0123456789abcdef0";

TokenTable Tokens() {
  absl::StatusOr<TokenTable> t = TokenTable::Make(
      {kJoin}, {"admin " + kAdmin + " root", "submit " + kAlice + " alice", "submit " + kBob + " bob",
                "read " + kReader});
  REQUIRE(t.ok());
  return *std::move(t);
}

TEST_CASE("Client token lines: role, token, optional name, bad ones name the problem, never the token") {
  absl::StatusOr<ClientToken> t = ParseClientTokenLine("submit " + kAlice + " alice");
  REQUIRE(t.ok());
  CHECK(t->role == Role::kSubmit);
  CHECK(t->token == kAlice);
  CHECK(t->name == "alice");
  absl::StatusOr<ClientToken> unnamed = ParseClientTokenLine("read\t" + kReader);
  REQUIRE(unnamed.ok());
  CHECK(unnamed->name.rfind("token-", 0) == 0);
  CHECK(unnamed->name.size() == 14);  // token- and 8 hex digits of its digest
  CHECK(unnamed->name.find(kReader.substr(0, 8)) == std::string::npos);

  absl::StatusOr<ClientToken> role = ParseClientTokenLine("root " + kAlice);
  CHECK(role.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(role.status().message()).find("must be the role") != std::string::npos);
  // A line that forgot its role must not print the token it starts with.
  absl::StatusOr<ClientToken> no_role = ParseClientTokenLine(kAlice + " alice");
  CHECK_FALSE(no_role.ok());
  CHECK(std::string(no_role.status().message()).find(kAlice) == std::string::npos);
  CHECK_FALSE(ParseClientTokenLine("admin " + kAdmin + " token-12345678").ok());  // reserved prefix
  CHECK_FALSE(ParseClientTokenLine("admin " + kAdmin + " a\x01b").ok());
  absl::StatusOr<ClientToken> shorty = ParseClientTokenLine("admin abc123");
  CHECK(std::string(shorty.status().message()).find("at least 16 characters") != std::string::npos);
  CHECK(std::string(shorty.status().message()).find("abc123") == std::string::npos);
  CHECK_FALSE(ParseClientTokenLine("admin").ok());
  CHECK_FALSE(ParseClientTokenLine("admin " + kAlice + " a b").ok());
  CHECK_FALSE(ValidateToken("t", std::string("0123456789abcdef\x01", 17)).ok());
}

TEST_CASE("The same token under two names is refused") {
  absl::StatusOr<TokenTable> t = TokenTable::Make({}, {"admin " + kAdmin + " a", "read " + kAdmin + " b"});
  CHECK(t.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(t.status().message()).find("'a' and 'b' are the same token") != std::string::npos);
}

TEST_CASE("Lookups find exactly the configured tokens") {
  TokenTable t = Tokens();
  CHECK(t.has_join_tokens());
  CHECK(t.has_client_tokens());
  CHECK(t.JoinTokenValid(kJoin));
  CHECK_FALSE(t.JoinTokenValid(kAlice));
  CHECK_FALSE(t.JoinTokenValid(""));
  CHECK_FALSE(t.JoinTokenValid(kJoin.substr(0, kJoin.size() - 1)));
  REQUIRE(t.FindClient(kBob) != nullptr);
  CHECK(t.FindClient(kBob)->name == "bob");
  CHECK(t.FindClient(kJoin) == nullptr);
  CHECK(t.FindClient(kBob + "x") == nullptr);
}

TEST_CASE("Bearer values and peers") {
  CHECK(BearerToken("Bearer abc") == "abc");
  CHECK(BearerToken("bearer   abc  ") == "abc");
  CHECK(BearerToken("Basic abc") == "");
  CHECK(BearerToken("Bearer") == "");
  CHECK(BearerToken("") == "");
  CHECK(IsLoopbackPeer("ipv4:127.0.0.1:5000"));
  CHECK(IsLoopbackPeer("ipv4:127.3.2.1:5000"));
  CHECK(IsLoopbackPeer("ipv6:[::1]:5000"));
  CHECK(IsLoopbackPeer("ipv6:[::ffff:127.0.0.1]:5000"));
  CHECK(IsLoopbackPeer("ipv6:%5B::1%5D:5000"));  // how gRPC 1.51 writes it
  CHECK(IsLoopbackPeer("ipv6:%5B::ffff:127.0.0.1%5D:5000"));
  CHECK(IsLoopbackPeer("ipv6:[0:0:0:0:0:0:0:1]:5000"));
  CHECK(IsLoopbackPeer("::ffff:127.0.0.1"));
  CHECK_FALSE(IsLoopbackPeer("ipv6:%5B2001:db8::1%5D:5000"));
  CHECK_FALSE(IsLoopbackPeer("ipv4:127.0.0.1.example.com:5000"));
  CHECK_FALSE(IsLoopbackPeer("ipv6:[::1"));
  CHECK(IsLoopbackPeer("unix:/tmp/sock"));
  CHECK(IsLoopbackPeer("127.0.0.1"));
  CHECK(IsLoopbackPeer("::1"));
  CHECK_FALSE(IsLoopbackPeer("ipv4:10.0.0.5:5000"));
  CHECK_FALSE(IsLoopbackPeer("ipv4:1.127.0.0:5000"));
  CHECK_FALSE(IsLoopbackPeer("ipv6:[2001:db8::1]:5000"));
  CHECK_FALSE(IsLoopbackPeer("ipv6:[::ffff:10.0.0.1]:5000"));
  CHECK_FALSE(IsLoopbackPeer("192.168.1.4"));
  CHECK_FALSE(IsLoopbackPeer(""));
}

TEST_CASE("Authentication: tokens when configured, else loopback only") {
  TokenTable none;
  absl::StatusOr<Principal> local = AuthenticateClient(none, "", "ipv4:127.0.0.1:4000");
  REQUIRE(local.ok());
  CHECK(local->role == Role::kAdmin);
  CHECK(local->name.empty());
  absl::StatusOr<Principal> remote = AuthenticateClient(none, "Bearer " + kAdmin, "ipv4:10.1.2.3:4000");
  CHECK(remote.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(AuthenticateWorker(none, "", "ipv6:[::1]:1").ok());
  CHECK(AuthenticateWorker(none, "", "ipv4:10.1.2.3:1").code() == absl::StatusCode::kUnauthenticated);
  // Under mTLS a verified client certificate counts like a loopback peer.
  CHECK(AuthenticateClient(none, "", "ipv4:10.1.2.3:4000", /*peer_certified=*/true).ok());
  CHECK(AuthenticateWorker(none, "", "ipv4:10.1.2.3:1", /*peer_certified=*/true).ok());

  TokenTable t = Tokens();
  // With tokens, loopback is no excuse: other local users must not get in.
  CHECK(AuthenticateClient(t, "", "ipv4:127.0.0.1:1").status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(AuthenticateClient(t, "Bearer " + kJoin, "ipv4:127.0.0.1:1").status().code() ==
        absl::StatusCode::kUnauthenticated);
  absl::StatusOr<Principal> alice = AuthenticateClient(t, "Bearer " + kAlice, "ipv4:10.1.2.3:1");
  REQUIRE(alice.ok());
  CHECK(alice->role == Role::kSubmit);
  CHECK(alice->name == "alice");
  CHECK(AuthenticateWorker(t, "Bearer " + kJoin, "ipv4:10.1.2.3:1").ok());
  CHECK(AuthenticateWorker(t, "Bearer " + kAdmin, "ipv4:127.0.0.1:1").code() == absl::StatusCode::kUnauthenticated);
  CHECK(AuthenticateWorker(t, "", "ipv4:127.0.0.1:1").code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("Roles: submit owns its tasks, read reads all, admin does everything") {
  const Principal alice{Role::kSubmit, "alice"}, reader{Role::kRead, "auditor"}, admin{Role::kAdmin, "root"};
  CHECK(Authorize(alice, Action::kSubmit).ok());
  CHECK(Authorize(alice, Action::kReadTask, "alice").ok());
  CHECK(Authorize(alice, Action::kCancel, "alice").ok());
  CHECK(Authorize(alice, Action::kListTasks).ok());
  CHECK(Authorize(alice, Action::kReadCluster).ok());
  CHECK(Authorize(alice, Action::kReadTask, "bob").code() == absl::StatusCode::kPermissionDenied);
  CHECK(Authorize(alice, Action::kCancel, "bob").code() == absl::StatusCode::kPermissionDenied);
  CHECK(Authorize(alice, Action::kCancel, "").code() == absl::StatusCode::kPermissionDenied);
  CHECK(Authorize(alice, Action::kDrain).code() == absl::StatusCode::kPermissionDenied);

  CHECK(Authorize(reader, Action::kReadTask, "bob").ok());
  CHECK(Authorize(reader, Action::kListTasks).ok());
  CHECK(Authorize(reader, Action::kReadCluster).ok());
  CHECK(Authorize(reader, Action::kSubmit).code() == absl::StatusCode::kPermissionDenied);
  CHECK(Authorize(reader, Action::kCancel, "auditor").code() == absl::StatusCode::kPermissionDenied);
  CHECK(Authorize(reader, Action::kDrain).code() == absl::StatusCode::kPermissionDenied);

  for (Action a : {Action::kSubmit, Action::kReadTask, Action::kListTasks, Action::kReadCluster, Action::kCancel,
                   Action::kDrain}) {
    CHECK(Authorize(admin, a, "anyone").ok());
  }
  absl::Status denied = Authorize(alice, Action::kCancel, "bob");
  CHECK(std::string(denied.message()) == "token 'alice' (role submit) may not cancel this task: it belongs to another submitter");
}

}  // namespace

namespace coordinator {
namespace {

absl::StatusOr<SubmitResult> SubmitAs(Fixture& f, const std::string& owner, const std::string& key = "",
                                      const std::string& tag = "") {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  spec.set_idempotency_key(key);
  if (!tag.empty()) spec.mutable_requirements()->add_required_tags(tag);
  absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
  f.core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { out = std::move(r); }, owner);
  return out;
}

TEST_CASE("Tasks record their owner, only the owner (or an admin) cancels them") {
  Fixture f;
  ClientApi api(&f.core, nullptr);  // the cancel the front-ends make
  absl::StatusOr<SubmitResult> a = SubmitAs(f, "alice");
  REQUIRE(a.ok());
  CHECK(f.Get(a->task_id).owner() == "alice");
  absl::StatusOr<pb::CancelTaskResponse> out = absl::InternalError("not answered");
  api.Cancel({Role::kSubmit, "bob"}, a->task_id, [&](auto r) { out = std::move(r); });
  CHECK(out.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(f.Get(a->task_id).status() == pb::TASK_STATUS_QUEUED);
  api.Cancel({Role::kAdmin, "root"}, a->task_id, [&](auto r) { out = std::move(r); });
  REQUIRE(out.ok());
  CHECK(out->cancelled());
  CHECK(f.Get(a->task_id).error_message() == "cancelled by root");
}

TEST_CASE("Idempotency keys are per submitter") {
  Fixture f;
  absl::StatusOr<SubmitResult> a1 = SubmitAs(f, "alice", "k");
  absl::StatusOr<SubmitResult> b1 = SubmitAs(f, "bob", "k");
  absl::StatusOr<SubmitResult> a2 = SubmitAs(f, "alice", "k");
  REQUIRE(a1.ok());
  REQUIRE(b1.ok());
  REQUIRE(a2.ok());
  CHECK(a1->task_id != b1->task_id);
  CHECK_FALSE(b1->existing);
  CHECK(a2->task_id == a1->task_id);
  CHECK(a2->existing);
}

TEST_CASE("A submitter over max_unfinished_per_owner is refused until one of its tasks ends") {
  CoordinatorOptions o = Fixture::Options();
  o.max_unfinished_per_owner = 2;
  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core(o, &store, &clock);
  auto submit = [&](const std::string& owner) {
    pb::TaskSpec spec;
    spec.set_task_type("echo");
    absl::StatusOr<SubmitResult> out = absl::InternalError("not answered");
    core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) { out = std::move(r); }, owner);
    return out;
  };
  absl::StatusOr<SubmitResult> first = submit("alice");
  REQUIRE(first.ok());
  REQUIRE(submit("alice").ok());
  absl::StatusOr<SubmitResult> third = submit("alice");
  CHECK(third.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(third.status().message()).find("max_queued_per_token") != std::string::npos);
  CHECK(submit("bob").ok());  // the limit is per submitter
  CHECK(submit("").ok());     // the unnamed loopback caller is not limited
  CHECK(submit("").ok());
  CHECK(submit("").ok());
  core.Cancel(first->task_id, [](auto) {});
  CHECK(submit("alice").ok());
}

TEST_CASE("A worker that accepts only some submitters gets only their tasks, and says why for others") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  pb::Register reg;
  pb::Capabilities* c = reg.mutable_capabilities();
  c->set_device_id("private");
  c->set_slots(4);
  c->set_cpu_cores(2);
  c->add_task_types("echo");
  c->add_accepted_submitters("alice");
  REQUIRE(f.core.RegisterWorker(reg, link).ok());
  absl::StatusOr<SubmitResult> a = SubmitAs(f, "alice");
  absl::StatusOr<SubmitResult> b = SubmitAs(f, "bob");
  absl::StatusOr<SubmitResult> anon = SubmitAs(f, "");
  REQUIRE(link->assigned.size() == 1);
  CHECK(link->assigned[0].task_id() == a->task_id);
  CHECK(link->assigned[0].owner() == "alice");
  CHECK(f.Get(b->task_id).status() == pb::TASK_STATUS_QUEUED);
  CHECK(f.Get(b->task_id).unschedulable_reason().find("does not accept tasks of submitter 'bob'") != std::string::npos);
  CHECK(f.Get(anon->task_id).status() == pb::TASK_STATUS_QUEUED);
}

TEST_CASE("An admin's drain stops new assignments to a worker until lifted, across reconnects") {
  Fixture f;
  auto link = std::make_shared<FakeLink>();
  f.Join("w", 2, link);
  absl::StatusOr<pb::Worker> w = f.core.DrainWorker("w", true);
  REQUIRE(w.ok());
  CHECK(w->drained());
  CHECK(w->status() == pb::WORKER_STATUS_DRAINING);
  std::string id = f.Submit("echo");
  CHECK(link->assigned.empty());
  auto again = std::make_shared<FakeLink>();
  f.Join("w", 2, again);  // a reconnect keeps the drain
  CHECK(again->assigned.empty());
  REQUIRE(f.core.DrainWorker("w", false).ok());
  REQUIRE(again->assigned.size() == 1);
  CHECK(again->assigned[0].task_id() == id);
  CHECK(f.core.DrainWorker("nope", true).status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace coordinator
}  // namespace rc
