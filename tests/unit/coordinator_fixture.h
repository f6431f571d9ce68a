#pragma once
// A Coordinator core with a fake clock and fake worker links, for unit tests (no RPC).

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coordinator/core/coordinator.h"

namespace rc::coordinator {

class FakeLink final : public WorkerLink {
 public:
  void Send(pb::CoordinatorMessage m) override {
    for (const auto& a : m.assignments()) assigned.push_back(a);
    for (const auto& c : m.cancels()) cancels.push_back(c);
    for (const auto& a : m.finished_acks()) acks.push_back(a);
  }
  void Close(absl::Status s) override { closed = s; }
  std::vector<pb::Assignment> assigned;
  std::vector<pb::CancelAttempt> cancels;
  std::vector<pb::RunningAttempt> acks;
  std::optional<absl::Status> closed;
};

struct Fixture {
  explicit Fixture(CoordinatorOptions o = Options()) : core(std::move(o), &store, &clock) {}

  FakeClock clock;
  MemoryTaskStore store;
  Coordinator core;

  // Heartbeat 1 s, offline after 5 s, grace 5 s; retry n waits 0.5 s * 2^(n-1) (random = 0).
  static CoordinatorOptions Options() {
    CoordinatorOptions o;
    o.reconnect_grace = absl::Seconds(5);
    o.retry_backoff_initial = absl::Seconds(1);
    o.random = [] { return 0.0; };
    return o;
  }

  // Lets a retry's backoff pass and the coordinator notice.
  void PassBackoff(absl::Duration d = absl::Seconds(1)) {
    clock.Advance(d);
    core.Tick();
  }

  std::string Submit(const std::string& type, pb::Priority p = pb::PRIORITY_NORMAL,
                     const std::function<void(pb::TaskSpec*)>& edit = nullptr) {
    pb::TaskSpec spec;
    spec.set_task_type(type);
    spec.set_priority(p);
    if (edit) edit(&spec);
    std::string id;
    core.Submit(spec, [&](absl::StatusOr<SubmitResult> r) {
      REQUIRE(r.ok());
      id = r->task_id;
    });
    return id;
  }

  // Registers a worker; returns its epoch.
  uint64_t Join(const std::string& device, int slots, std::shared_ptr<FakeLink> link,
                std::vector<std::string> tags = {}, std::vector<pb::RunningAttempt> running = {}) {
    pb::Register reg;
    pb::Capabilities* c = reg.mutable_capabilities();
    c->set_device_id(device);
    c->set_slots(slots);
    c->set_platform("linux");
    c->set_cpu_cores(2);
    c->add_task_types("echo");
    c->add_task_types("sleep");
    for (const auto& t : tags) c->add_tags(t);
    for (const auto& r : running) *reg.add_running() = r;
    auto epoch = core.RegisterWorker(reg, link);
    REQUIRE(epoch.ok());
    return *epoch;
  }

  void Finish(const std::string& device, uint64_t epoch, const pb::Assignment& a,
              pb::TaskStatus status = pb::TASK_STATUS_SUCCESS) {
    pb::WorkerMessage m;
    pb::TaskFinished* f = m.add_finished();
    f->set_task_id(a.task_id());
    f->set_attempt(a.attempt());
    f->set_status(status);
    f->set_result(a.payload());
    core.HandleWorkerMessage(device, epoch, m);
  }

  pb::Task Get(const std::string& id) { return *core.GetTask(id); }

  absl::StatusOr<pb::CancelTaskResponse> Cancel(const std::string& id) {
    absl::StatusOr<pb::CancelTaskResponse> out = absl::InternalError("not answered");
    core.Cancel(id, [&](absl::StatusOr<pb::CancelTaskResponse> r) { out = std::move(r); });
    return out;
  }
};


}  // namespace rc::coordinator
