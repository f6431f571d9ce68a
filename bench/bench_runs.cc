#include "bench/bench_runs.h"

#include <algorithm>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

namespace rc::bench {
namespace {

namespace pb = ::retire_cluster::v1;

// What every callback of a run records into.
class Tally {
 public:
  void Finished(bool ok, double ms, const absl::Status& why) {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    if (ok) {
      ++result_.succeeded;
      result_.latency_ms.push_back(ms);
    } else {
      ++result_.failed;
      if (result_.first_error.empty()) result_.first_error = why.ToString();
    }
  }
  // Blocks until fewer than `limit` tasks are outstanding, then counts one more.
  void Acquire(int64_t limit) {
    absl::MutexLock lock(&mu_);
    auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outstanding_ < limit; };
    mu_.Await(absl::Condition(&room));
    ++outstanding_;
  }
  // Blocks until every task has finished.
  RunResult Take() {
    absl::MutexLock lock(&mu_);
    auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outstanding_ == 0; };
    mu_.Await(absl::Condition(&idle));
    return std::move(result_);
  }

 private:
  absl::Mutex mu_;
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  RunResult result_ ABSL_GUARDED_BY(mu_);
};

// The module of a `js` run (issue 16): it returns its input, so a result is checked like an
// echo's. Each task still gets its own sandbox (a fresh QuickJS instance on the worker).
constexpr char kJsEcho[] = "module.exports = async (input) => input";

// The same JSON value (a js result is re-serialized by the engine, so compare values, not text).
bool SameJson(const std::string& a, const std::string& b) {
  const nlohmann::json x = nlohmann::json::parse(a, nullptr, false);
  return !x.is_discarded() && x == nlohmann::json::parse(b, nullptr, false);
}

// Task i of a run, and what its result must be.
struct OneTask {
  pb::TaskSpec spec;
  std::string expected;
  bool js = false;
  bool check = false;  // compare the result with `expected`
};

OneTask MakeTask(const RunOptions& options, int64_t i) {
  OneTask t;
  t.spec.set_task_type(options.type);
  t.expected = options.fixed_payload.value_or(
      absl::StrCat(R"({"i":)", i, R"(,"fill":")", std::string(static_cast<size_t>(options.payload_bytes), 'x'), R"("})"));
  t.js = options.type == "js" && !options.fixed_payload.has_value();
  t.check = (options.type == "echo" || t.js) && !options.fixed_payload.has_value();
  t.spec.set_payload(t.js ? absl::StrCat(R"({"code":")", kJsEcho, R"(","input":)", t.expected, "}") : t.expected);
  return t;
}

// Reports the end of a task submitted at `t0` to `tally` (checking an echo's result).
void Report(const absl::StatusOr<pb::Task>& t, const OneTask& task, absl::Time t0, Tally& tally) {
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!t.ok()) return tally.Finished(false, ms, t.status());
  if (t->status() != pb::TASK_STATUS_SUCCESS) {
    return tally.Finished(false, ms, absl::InternalError(absl::StrCat(t->task_id(), ": ", t->error_message())));
  }
  if (task.check && (task.js ? !SameJson(t->result(), task.expected) : t->result() != task.expected)) {
    return tally.Finished(false, ms, absl::DataLossError(absl::StrCat(t->task_id(), ": result is not the payload")));
  }
  tally.Finished(true, ms, absl::OkStatus());
}

// Submits one task and reports its end to `tally`: SubmitAsync, then WaitAsync.
void RunOne(client::Client& client, const RunOptions& options, int64_t i, const std::shared_ptr<Tally>& tally) {
  OneTask task = MakeTask(options, i);
  pb::TaskSpec spec = std::move(task.spec);
  const absl::Time t0 = absl::Now();
  client.SubmitAsync(std::move(spec), [&client, tally, t0, task = std::move(task)](
                                          absl::StatusOr<pb::SubmitResponse> r) mutable {
    if (!r.ok()) return tally->Finished(false, 0, r.status());
    client.WaitAsync(r->task_id(), [tally, t0, task = std::move(task)](absl::StatusOr<pb::Task> t) {
      Report(t, task, t0, *tally);
    });
  });
}

// Round trips first, first + 1, ... (count of them) one after another; each one call
// (SubmitAndWait) or the async pair.
void Sequential(client::Client& client, const RunOptions& options, int64_t first, int64_t count,
                const std::shared_ptr<Tally>& tally) {
  for (int64_t i = first; i < first + count; ++i) {
    tally->Acquire(1);
    if (!options.one_call) {
      RunOne(client, options, i, tally);
      continue;
    }
    const OneTask task = MakeTask(options, i);
    const absl::Time t0 = absl::Now();
    Report(client.SubmitAndWait(task.spec), task, t0, *tally);
  }
}

void Warmup(client::Client& client, const RunOptions& options) {
  auto tally = std::make_shared<Tally>();
  Sequential(client, options, -options.warmup, options.warmup, tally);  // ids below the measured ones
  tally->Take();
}

}  // namespace

RunResult Throughput(client::Client& client, const RunOptions& options) {
  RunOptions pair = options;
  pair.one_call = false;  // warms up the calls it measures
  Warmup(client, pair);
  auto tally = std::make_shared<Tally>();
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < options.tasks; ++i) {
    tally->Acquire(options.in_flight);
    RunOne(client, options, i, tally);
  }
  RunResult r = tally->Take();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return r;
}

RunResult Latency(client::Client& client, const RunOptions& options) {
  Warmup(client, options);
  auto tally = std::make_shared<Tally>();
  const absl::Time start = absl::Now();
  Sequential(client, options, 0, options.tasks, tally);
  RunResult r = tally->Take();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return r;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace rc::bench
