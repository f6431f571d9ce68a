// Live usage samples on the coordinator (worker_service.proto TaskProgress.usage): the
// running task shows the latest one (GetTask, watchers) without a store write per sample;
// the final report replaces it; trailing and stale samples are ignored; a task that stops
// running (cancel) loses its sample.
#include <catch2/catch.hpp>

#include "absl/synchronization/mutex.h"
#include "tests/unit/coordinator_fixture.h"

namespace rc::coordinator {
namespace {

class Snapshots final : public TaskSink {
 public:
  void OnTask(pb::Task t) override {
    absl::MutexLock lock(&mu);
    seen.push_back(t);
  }
  void Abort(absl::Status) override {}
  std::vector<pb::Task> Seen() {
    absl::MutexLock lock(&mu);
    return seen;
  }
  absl::Mutex mu;
  std::vector<pb::Task> seen ABSL_GUARDED_BY(mu);
};

struct Running {
  Fixture f;
  std::shared_ptr<FakeLink> link = std::make_shared<FakeLink>();
  uint64_t epoch = 0;
  std::string id;
  pb::Assignment a;

  Running() {
    epoch = f.Join("w1", 1, link);
    id = f.Submit("sleep");
    REQUIRE(link->assigned.size() == 1);
    a = link->assigned[0];
    pb::WorkerMessage m;
    pb::TaskStarted* s = m.add_started();
    s->set_task_id(id);
    s->set_attempt(a.attempt());
    pb::TaskProgress* p = m.add_progress();
    p->set_task_id(id);
    p->set_attempt(a.attempt());
    p->set_pid(4321);
    f.core.HandleWorkerMessage("w1", epoch, m);
    REQUIRE(f.Get(id).status() == pb::TASK_STATUS_RUNNING);
  }

  // A new main process of the current attempt (a progress report without a sample).
  void NewProcess(int32_t pid) {
    pb::WorkerMessage m;
    pb::TaskProgress* p = m.add_progress();
    p->set_task_id(id);
    p->set_attempt(a.attempt());
    p->set_pid(pid);
    f.core.HandleWorkerMessage("w1", epoch, m);
  }

  void Sample(int attempt, double cpu_percent, int64_t memory, int64_t at_ms, const std::string& device = "w1") {
    pb::WorkerMessage m;
    pb::TaskProgress* p = m.add_progress();
    p->set_task_id(id);
    p->set_attempt(attempt);
    p->set_pid(4321);
    pb::ResourceUsage* u = p->mutable_usage();
    u->set_pid(4321);
    u->set_cpu_seconds(1.5);
    u->set_cpu_percent(cpu_percent);
    u->set_memory_bytes(memory);
    u->set_sampled_at_ms(at_ms);
    f.core.HandleWorkerMessage(device, epoch, m);
  }

  pb::Task Stored() {
    absl::StatusOr<std::optional<pb::Task>> t = f.store.Get(id);
    REQUIRE(t.ok());
    REQUIRE(t->has_value());
    return **t;
  }
};

}  // namespace

TEST_CASE("A running task shows its latest usage sample, kept in memory and not written") {
  Running r;
  const pb::Task before = r.Stored();
  CHECK(before.resource_usage().pid() == 4321);  // the pid is written, once per process
  auto watcher = std::make_shared<Snapshots>();
  REQUIRE(r.f.core.Watch(r.id, watcher).ok());

  r.Sample(r.a.attempt(), 87.5, 50 << 20, 1'700'000'001'000);
  pb::Task t = r.f.Get(r.id);
  CHECK(t.resource_usage().pid() == 4321);
  CHECK(t.resource_usage().cpu_seconds() == 1.5);
  CHECK(t.resource_usage().cpu_percent() == 87.5);
  CHECK(t.resource_usage().memory_bytes() == 50 << 20);
  CHECK(t.resource_usage().sampled_at_ms() == 1'700'000'001'000);
  CHECK(t.revision() > before.revision());  // watchers keep only newer revisions

  r.Sample(r.a.attempt(), 12.0, 60 << 20, 1'700'000'002'000);
  CHECK(r.f.Get(r.id).resource_usage().cpu_percent() == 12.0);
  // Two samples, no write: the stored record is the one from before them.
  const pb::Task stored = r.Stored();
  CHECK(stored.revision() == before.revision());
  CHECK(stored.resource_usage().sampled_at_ms() == 0);

  std::vector<pb::Task> seen = watcher->Seen();
  REQUIRE(seen.size() == 3);  // the snapshot at Watch, then one per sample
  CHECK(seen[1].resource_usage().cpu_percent() == 87.5);
  CHECK(seen[2].resource_usage().memory_bytes() == 60 << 20);
  CHECK(seen[2].revision() > seen[1].revision());
}

TEST_CASE("A write while a sample is live stores the new pid without the sample, and memory keeps the sample") {
  Running r;
  r.Sample(r.a.attempt(), 87.5, 50 << 20, 1'700'000'001'000);
  // A new main process: its pid is written (the record is serialized from the task in
  // memory, with the live fields left out for the write and put back after).
  r.NewProcess(999);
  const pb::Task stored = r.Stored();
  CHECK(stored.resource_usage().pid() == 999);
  CHECK(stored.resource_usage().cpu_percent() == 0);
  CHECK(stored.resource_usage().memory_bytes() == 0);
  CHECK(stored.resource_usage().sampled_at_ms() == 0);
  CHECK(stored.spec().payload() == r.f.Get(r.id).spec().payload());  // kept from the first write
  const pb::Task now = r.f.Get(r.id);
  CHECK(now.resource_usage().pid() == 999);
  CHECK(now.resource_usage().cpu_percent() == 87.5);
  CHECK(now.resource_usage().memory_bytes() == 50 << 20);
}

TEST_CASE("The final report replaces the live sample, and a sample trailing the end is ignored") {
  Running r;
  r.Sample(r.a.attempt(), 90.0, 10 << 20, 1'700'000'001'000);
  pb::WorkerMessage m;
  pb::TaskFinished* fin = m.add_finished();
  fin->set_task_id(r.id);
  fin->set_attempt(r.a.attempt());
  fin->set_status(pb::TASK_STATUS_SUCCESS);
  fin->mutable_usage()->set_cpu_seconds(2.25);
  fin->mutable_usage()->set_peak_rss_bytes(11 << 20);
  r.f.core.HandleWorkerMessage("w1", r.epoch, m);

  auto check_final = [](const pb::Task& t) {
    CHECK(t.status() == pb::TASK_STATUS_SUCCESS);
    CHECK(t.resource_usage().cpu_seconds() == 2.25);
    CHECK(t.resource_usage().peak_rss_bytes() == 11 << 20);
    CHECK(t.resource_usage().pid() == 0);
    CHECK(t.resource_usage().cpu_percent() == 0);
    CHECK(t.resource_usage().memory_bytes() == 0);
    CHECK(t.resource_usage().sampled_at_ms() == 0);
  };
  check_final(r.f.Get(r.id));
  check_final(r.Stored());

  r.Sample(r.a.attempt(), 99.0, 99 << 20, 1'700'000'009'000);  // sent before the end, arrived after
  check_final(r.f.Get(r.id));
}

TEST_CASE("Samples of a stale attempt or from another worker are ignored") {
  Running r;
  r.Sample(r.a.attempt() + 1, 50.0, 1 << 20, 1'700'000'001'000);
  r.Sample(r.a.attempt() - 1, 50.0, 1 << 20, 1'700'000'001'000);
  CHECK(r.f.Get(r.id).resource_usage().sampled_at_ms() == 0);
  auto other = std::make_shared<FakeLink>();
  const uint64_t other_epoch = r.f.Join("w2", 1, other);
  pb::WorkerMessage m;
  pb::TaskProgress* p = m.add_progress();
  p->set_task_id(r.id);
  p->set_attempt(r.a.attempt());
  p->mutable_usage()->set_sampled_at_ms(1'700'000'001'000);
  r.f.core.HandleWorkerMessage("w2", other_epoch, m);
  CHECK(r.f.Get(r.id).resource_usage().sampled_at_ms() == 0);
  CHECK(r.f.Get(r.id).resource_usage().pid() == 4321);
}

TEST_CASE("A cancelled running task no longer shows a pid or a live sample") {
  Running r;
  r.Sample(r.a.attempt(), 70.0, 5 << 20, 1'700'000'001'000);
  REQUIRE(r.f.Cancel(r.id).ok());
  for (const pb::Task& t : {r.f.Get(r.id), r.Stored()}) {
    CHECK(t.status() == pb::TASK_STATUS_CANCELLED);
    CHECK(t.resource_usage().pid() == 0);
    CHECK(t.resource_usage().cpu_percent() == 0);
    CHECK(t.resource_usage().memory_bytes() == 0);
    CHECK(t.resource_usage().sampled_at_ms() == 0);
  }
}

}  // namespace rc::coordinator
