#include "worker/execution/usage_sampler.h"

#include <vector>

#include "spdlog/spdlog.h"
#include "worker/process/process_sampler.h"

namespace rc::worker {

UsageSampler::UsageSampler(EventSink* sink, const Clock* clock, absl::Duration interval, std::string proc_root)
    : sink_(sink), clock_(clock), interval_(interval), proc_root_(std::move(proc_root)) {
  thread_ = std::thread([this] { Loop(); });
}

UsageSampler::~UsageSampler() { Stop(); }

void UsageSampler::Track(const std::string& task_id, int attempt, int pid) {
  if (pid <= 0) return;
  absl::MutexLock lock(&mu_);
  tracked_[AttemptKey(task_id, attempt)] = Tracked{pid, 0, clock_->Now()};
}

void UsageSampler::Untrack(const std::string& task_id, int attempt) {
  {
    // Most attempts never start a process: no need to wait for a round. One removed by
    // SampleNow had no report in it.
    absl::MutexLock lock(&mu_);
    if (!tracked_.contains(AttemptKey(task_id, attempt))) return;
  }
  absl::MutexLock round(&round_mu_);
  absl::MutexLock lock(&mu_);
  tracked_.erase(AttemptKey(task_id, attempt));
}

int UsageSampler::tracked() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(tracked_.size());
}

void UsageSampler::SampleNow() {
  absl::MutexLock round(&round_mu_);
  std::vector<std::pair<AttemptKey, Tracked>> now;
  {
    absl::MutexLock lock(&mu_);
    now.assign(tracked_.begin(), tracked_.end());
  }
  if (now.empty()) return;
  std::vector<pid_t> groups;
  for (const auto& [key, t] : now) groups.push_back(t.pid);  // each task process leads its own group
  absl::StatusOr<absl::flat_hash_map<pid_t, GroupUsage>> usage = SampleProcessGroups(groups, proc_root_);
  if (!usage.ok()) {
    if (!warned_) spdlog::warn("no live CPU and memory of running tasks: {}", usage.status().ToString());
    warned_ = true;
    return;
  }
  const absl::Time at = clock_->Now();
  std::vector<pb::TaskProgress> reports;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, was] : now) {
      auto it = tracked_.find(key);
      // Untracked, or another process of the attempt reported meanwhile: the next round.
      if (it == tracked_.end() || it->second.pid != was.pid) continue;
      auto found = usage->find(was.pid);
      if (found == usage->end()) {  // its processes are gone (the attempt is ending)
        tracked_.erase(it);
        continue;
      }
      const GroupUsage& g = found->second;
      pb::TaskProgress& p = reports.emplace_back();
      p.set_task_id(key.first);
      p.set_attempt(key.second);
      p.set_pid(was.pid);
      pb::ResourceUsage* u = p.mutable_usage();
      u->set_pid(was.pid);
      u->set_cpu_seconds(g.cpu_seconds);
      u->set_cpu_percent(CpuPercent(was.cpu_seconds, g.cpu_seconds, was.at, at));
      u->set_memory_bytes(g.memory_bytes);
      u->set_sampled_at_ms(absl::ToUnixMillis(at));
      it->second.cpu_seconds = g.cpu_seconds;
      it->second.at = at;
    }
  }
  // Still inside the round: an Untrack waits until these are in the sink.
  for (pb::TaskProgress& p : reports) sink_->Progress(std::move(p));
}

void UsageSampler::Loop() {
  mu_.Lock();
  while (true) {
    // Idle (nothing tracked) without the clock: a FakeClock sees no waiter here.
    mu_.Await(absl::Condition(
        +[](UsageSampler* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->stopping_ || !s->tracked_.empty(); },
        this));
    if (stopping_) break;
    const absl::Time next = clock_->Now() + interval_;
    clock_->AwaitWithDeadline(
        &mu_,
        absl::Condition(
            +[](UsageSampler* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->stopping_ || s->tracked_.empty(); },
            this),
        next);
    if (stopping_) break;
    if (tracked_.empty()) continue;
    mu_.Unlock();
    SampleNow();
    mu_.Lock();
  }
  mu_.Unlock();
}

void UsageSampler::Stop() {
  absl::MutexLock join(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

AttemptResult UsageSampling::Execute(const Attempt& attempt) {
  // Forwards everything to the attempt's sink; a pid report also starts sampling.
  class PidWatch final : public EventSink {
   public:
    PidWatch(UsageSampler* sampler, EventSink* inner) : sampler_(sampler), inner_(inner) {}
    void Started(pb::TaskStarted e) override { inner_->Started(std::move(e)); }
    void Finished(pb::TaskFinished e) override { inner_->Finished(std::move(e)); }
    void Waiting(pb::WaitingAttempts e) override { inner_->Waiting(std::move(e)); }
    void Progress(pb::TaskProgress e) override {
      const bool new_process = e.pid() > 0 && !e.has_usage();
      const std::string task_id = e.task_id();
      const int attempt = e.attempt(), pid = e.pid();
      inner_->Progress(std::move(e));  // the pid reaches the coordinator before its samples
      if (new_process) sampler_->Track(task_id, attempt, pid);
    }

   private:
    UsageSampler* const sampler_;
    EventSink* const inner_;
  };
  PidWatch watch(sampler_, attempt.events);
  Attempt watched = attempt;
  watched.events = &watch;
  AttemptResult r = inner_->Execute(watched);
  sampler_->Untrack(attempt.assignment->task_id(), attempt.assignment->attempt());
  return r;
}

}  // namespace rc::worker
