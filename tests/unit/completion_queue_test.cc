// Store completions come back to the core in delivery order, never on the store's
// writer thread, and none is lost or run once the Coordinator is gone.
#include <catch2/catch.hpp>

#include <thread>

#include "absl/synchronization/notification.h"
#include "coordinator/core/completion_queue.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

// Reserves a ticket the way an operation does and leaves RunIfReady for later.
struct Op {
  CompletionQueue& q;
  uint64_t ticket = q.Reserve();
};

}  // namespace

TEST_CASE("Completions run in delivery order, whatever order the store answers in") {
  CompletionQueue q;
  std::vector<int> ran;
  Op a{q}, b{q}, c{q};
  for (Op* op : {&a, &b, &c}) q.RunIfReady(op->ticket);  // the operations moved on: the store answers later
  q.Complete(c.ticket, [&] { ran.push_back(3); });
  q.Complete(b.ticket, [&] { ran.push_back(2); });
  CHECK(ran.empty());
  q.Complete(a.ticket, [&] { ran.push_back(1); });
  CHECK(ran == std::vector<int>{1, 2, 3});
  CHECK(q.ran() == c.ticket);
}

TEST_CASE("A completion made while its operation still delivers waits for that operation") {
  CompletionQueue q;
  bool ran = false;
  Op op{q};
  q.Complete(op.ticket, [&] { ran = true; });  // an inline store, under the delivery lock
  CHECK_FALSE(ran);
  q.RunIfReady(op.ticket);  // the operation, its locks released
  CHECK(ran);
}

TEST_CASE("A completion that starts another operation runs it after itself, not inside") {
  CompletionQueue q;
  std::vector<std::string> ran;
  Op outer{q};
  q.Complete(outer.ticket, [&] {
    ran.push_back("outer begins");
    Op inner{q};
    q.Complete(inner.ticket, [&] { ran.push_back("inner"); });
    q.RunIfReady(inner.ticket);
    ran.push_back("outer ends");
  });
  q.RunIfReady(outer.ticket);
  CHECK(ran == std::vector<std::string>{"outer begins", "outer ends", "inner"});
}

TEST_CASE("A closed queue drops what comes later and what still waited") {
  CompletionQueue q;
  int ran = 0;
  Op first{q}, second{q};
  q.RunIfReady(first.ticket);
  q.RunIfReady(second.ticket);
  q.Complete(second.ticket, [&] { ++ran; });  // waits for first, which never comes
  q.Close();
  q.Complete(first.ticket, [&] { ++ran; });
  CHECK(ran == 0);
}

TEST_CASE("The completion thread runs posted work in order, and Stop runs what was posted") {
  CompletionThread t;
  std::vector<int> ran;
  std::thread::id where;
  for (int i = 0; i < 100; ++i) {
    t.Post([&, i] {
      ran.push_back(i);
      where = std::this_thread::get_id();
    });
  }
  t.Stop();
  REQUIRE(ran.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(ran[i] == i);
  CHECK(where != std::this_thread::get_id());
  t.Post([&] { ran.push_back(-1); });  // after Stop: dropped
  CHECK(ran.size() == 100);
}

namespace {

// A store with a writer thread of its own, like SqliteTaskStore, that commits only when
// closed: then each write completes there, or on the thread PostCompletionsTo names.
class ThreadedStore final : public TaskStore {
 public:
  ThreadedStore() : writer_([this] { Loop(); }) {}
  ~ThreadedStore() override { Close(); }
  void Write(std::vector<TaskRecord> tasks, std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    for (auto& t : tasks) records_.push_back(*ParseRecord(t));
    pending_.push_back(std::move(done));
  }
  void Delete(std::vector<std::string>, std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(done));
  }
  absl::StatusOr<std::vector<pb::Task>> LoadAll() override {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  bool PostCompletionsTo(std::function<void(std::function<void()>)> post) override {
    absl::MutexLock lock(&mu_);
    post_ = std::move(post);
    return post_ != nullptr;
  }
  void Close() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (writer_.joinable()) writer_.join();
  }
  std::thread::id writer_id() const { return writer_id_; }

 private:
  void Loop() {
    std::deque<std::function<void(absl::Status)>> done;
    std::function<void(std::function<void()>)> post;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&stopping_));
      done.swap(pending_);
      post = post_;
    }
    for (auto& d : done) {
      if (post) {
        post([d] { d(absl::OkStatus()); });
      } else {
        d(absl::OkStatus());
      }
    }
  }

  absl::Mutex mu_;
  std::vector<pb::Task> records_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void(absl::Status)>> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(std::function<void()>)> post_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
  const std::thread::id writer_id_ = writer_.get_id();
};

pb::TaskSpec Echo() {
  pb::TaskSpec spec;
  spec.set_task_type("echo");
  return spec;
}

}  // namespace

TEST_CASE("Submits are answered off the store's writer thread, in submit order, none lost when the store closes first") {
  FakeClock clock;
  ThreadedStore store;
  std::vector<std::string> answered;  // task ids in answer order
  std::vector<std::thread::id> threads;
  std::vector<std::string> submitted;
  const int n = 50;
  {
    Coordinator core(Fixture::Options(), &store, &clock);
    for (int i = 0; i < n; ++i) {
      core.Submit(Echo(), [&](absl::StatusOr<SubmitResult> r) {
        REQUIRE(r.ok());
        answered.push_back(r->task_id);  // one completion at a time: no lock needed
        threads.push_back(std::this_thread::get_id());
      });
    }
    CHECK(answered.empty());
    auto records = store.LoadAll();
    REQUIRE(records->size() == static_cast<size_t>(n));
    for (const pb::Task& t : *records) submitted.push_back(t.task_id());
    // As CoordinatorServer shuts down: the store commits and posts every answer, and
    // the core runs them before it is gone.
    store.Close();
  }
  CHECK(answered == submitted);
  for (const std::thread::id& t : threads) {
    CHECK(t != store.writer_id());
    CHECK(t != std::this_thread::get_id());
  }
}

TEST_CASE("A completion arriving after the Coordinator is destroyed runs nothing") {
  FakeClock clock;
  ThreadedStore store;
  bool answered = false;
  {
    Coordinator core(Fixture::Options(), &store, &clock);
    core.Submit(Echo(), [&](absl::StatusOr<SubmitResult>) { answered = true; });
  }
  store.Close();  // the writer now answers the submit's write: the core is gone
  CHECK_FALSE(answered);
}

}  // namespace rc::coordinator
