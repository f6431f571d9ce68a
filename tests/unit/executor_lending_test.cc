// Lent slots in the worker's Executor (DESIGN.md "Workflows", "No deadlock"): an attempt
// waiting on its subtree lets another one run beside it, within the caps, and the
// waiting set is reported on every change. Attempts start synchronously inside Assign /
// SetWaiting (running() counts them at once), so no check depends on timing.
#include <catch2/catch.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/unit/event_recorder.h"
#include "worker/execution/executor.h"
#include "worker/session/outbox.h"

namespace rc::worker {
namespace {

// Runs until its task id is opened (or the attempt is stopped).
class GateHandler final : public Handler {
 public:
  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    absl::MutexLock lock(&mu_);
    auto open = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_.contains(ctx.task_id) || ctx.stop->stopped(); };
    for (int i = 0; i < 3000 && !open(); ++i) mu_.AwaitWithTimeout(absl::Condition(&open), absl::Milliseconds(10));
    return HandlerOutput();
  }
  void Open(const std::string& id) {
    absl::MutexLock lock(&mu_);
    open_.insert(id);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> open_ ABSL_GUARDED_BY(mu_);
};

pb::Assignment Gate(const std::string& id) {
  pb::Assignment a;
  a.set_task_id(id);
  a.set_attempt(1);
  a.set_task_type("gate");
  a.set_payload("{}");
  a.set_timeout_seconds(60);
  return a;
}

struct Fixture {
  HandlerRegistry handlers;
  GateHandler* gate;
  Recorder events;
  std::unique_ptr<Executor> executor;
  explicit Fixture(int slots) {
    auto h = std::make_unique<GateHandler>();
    gate = h.get();
    handlers.Add("gate", std::move(h));
    executor = std::make_unique<Executor>(slots, &handlers, &events, pb::Capabilities());
  }
  ~Fixture() {
    executor->Stop();
  }
  std::vector<std::string> LastWaitingSet() {
    absl::MutexLock lock(&events.mu);
    std::vector<std::string> out;
    if (events.waiting.empty()) return {"(none reported)"};
    for (const auto& a : events.waiting.back().attempts()) out.push_back(absl::StrCat(a.task_id(), "/", a.attempt()));
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST_CASE("lending: CanStart allows slots not waiting, and slots * depth waiting once the slots are full") {
  // No lending without a depth limit (an older coordinator): plain slots.
  CHECK(CanStart(0, 0, 1, 0));
  CHECK_FALSE(CanStart(1, 0, 1, 0));
  CHECK_FALSE(CanStart(1, 1, 1, 0));
  // One slot, depth 2: a waiting attempt lends its slot, up to two waiting.
  CHECK_FALSE(CanStart(1, 0, 1, 2));
  CHECK(CanStart(1, 1, 1, 2));
  CHECK_FALSE(CanStart(2, 1, 1, 2));  // the lent slot is taken
  CHECK(CanStart(2, 2, 1, 2));
  CHECK_FALSE(CanStart(3, 3, 1, 2));  // three waiting: past slots * depth
  // Two slots: one waiting and one free slot start one more without lending.
  CHECK(CanStart(1, 1, 2, 0));
  CHECK_FALSE(CanStart(2, 1, 2, 0));
  CHECK(CanStart(2, 1, 2, 1));
  CHECK(CanStart(3, 2, 2, 1));
  CHECK_FALSE(CanStart(4, 3, 2, 1));
}

TEST_CASE("lending: on one slot, a waiting attempt lets a second one run, the cap holds, ends free the slots") {
  Fixture f(1);
  f.executor->SetMaxTaskDepth(1);
  f.executor->Assign(Gate("parent"));
  f.executor->Assign(Gate("child"));
  CHECK(f.executor->running() == 1);  // the child is queued behind the parent
  f.executor->SetWaiting("parent", 1, true);
  CHECK(f.executor->running() == 2);  // ... until the parent waits: its slot is lent
  CHECK(f.executor->waiting() == 1);
  CHECK(f.LastWaitingSet() == std::vector<std::string>{"parent/1"});

  // The child waits too: two waiting is past 1 slot * depth 1, so the grandchild queues.
  f.executor->Assign(Gate("grandchild"));
  CHECK(f.executor->running() == 2);
  f.executor->SetWaiting("child", 1, true);
  CHECK(f.executor->running() == 2);
  CHECK(f.LastWaitingSet() == std::vector<std::string>{"child/1", "parent/1"});
  f.executor->SetWaiting("child", 1, false);
  CHECK(f.executor->running() == 2);  // child runs again: the one slot is used
  CHECK(f.LastWaitingSet() == std::vector<std::string>{"parent/1"});

  // The child ends: the grandchild gets the lent slot. The parent stops waiting and ends.
  f.gate->Open("child");
  REQUIRE(f.events.WaitFinished(1));
  for (int i = 0; i < 500 && f.executor->running() != 2; ++i) absl::SleepFor(absl::Milliseconds(5));
  CHECK(f.executor->running() == 2);  // parent (waiting) + grandchild
  f.executor->SetWaiting("parent", 1, false);
  CHECK(f.LastWaitingSet().empty());
  f.gate->Open("grandchild");
  f.gate->Open("parent");
  REQUIRE(f.events.WaitFinished(3));
  CHECK(f.executor->WaitIdle(absl::Now() + absl::Seconds(10)));
  CHECK(f.executor->threads() <= 2);  // never more threads than attempts ever started at once
  absl::MutexLock lock(&f.events.mu);
  for (const auto& e : f.events.finished) CHECK(e.status() == pb::TASK_STATUS_SUCCESS);
}

TEST_CASE("lending: a waiting attempt that ends leaves the waiting set, unknown attempts are ignored") {
  Fixture f(1);
  f.executor->SetMaxTaskDepth(8);
  f.executor->SetWaiting("nobody", 1, true);  // not held: nothing happens
  CHECK(f.executor->waiting() == 0);
  f.executor->Assign(Gate("p"));
  f.executor->SetWaiting("p", 1, true);
  CHECK(f.executor->WaitingAttempts().size() == 1);
  f.gate->Open("p");
  REQUIRE(f.events.WaitFinished(1));
  CHECK(f.executor->WaitIdle(absl::Now() + absl::Seconds(10)));
  CHECK(f.executor->waiting() == 0);
  // Reported after the attempt left (outside the executor's lock): bounded wait for it.
  for (int i = 0; i < 1000 && !f.LastWaitingSet().empty(); ++i) absl::SleepFor(absl::Milliseconds(5));
  CHECK(f.LastWaitingSet().empty());
}

TEST_CASE("outbox: the waiting set goes out once per change, empty sets included") {
  Outbox outbox;
  pb::WorkerMessage m1;
  CHECK_FALSE(outbox.Take(&m1));
  CHECK_FALSE(m1.has_waiting());
  pb::WaitingAttempts set;
  pb::RunningAttempt* a = set.add_attempts();
  a->set_task_id("p");
  a->set_attempt(2);
  outbox.Waiting(set);
  pb::WorkerMessage m2;
  CHECK(outbox.Take(&m2));
  REQUIRE(m2.has_waiting());
  REQUIRE(m2.waiting().attempts_size() == 1);
  CHECK(m2.waiting().attempts(0).task_id() == "p");
  pb::WorkerMessage m3;
  CHECK_FALSE(outbox.Take(&m3));
  outbox.Waiting(pb::WaitingAttempts());
  pb::WorkerMessage m4;
  CHECK(outbox.Take(&m4));
  CHECK(m4.has_waiting());
  CHECK(m4.waiting().attempts_size() == 0);
}

}  // namespace rc::worker
