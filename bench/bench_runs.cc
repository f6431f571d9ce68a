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

// Submits one task and reports its end to `tally` (checking an echo's result).
void RunOne(client::Client& client, const RunOptions& options, int64_t i, const std::shared_ptr<Tally>& tally) {
  pb::TaskSpec spec;
  spec.set_task_type(options.type);
  std::string expected = options.fixed_payload.value_or(
      absl::StrCat(R"({"i":)", i, R"(,"fill":")", std::string(static_cast<size_t>(options.payload_bytes), 'x'), R"("})"));
  const bool js = options.type == "js" && !options.fixed_payload.has_value();
  const bool check = (options.type == "echo" || js) && !options.fixed_payload.has_value();
  spec.set_payload(js ? absl::StrCat(R"({"code":")", kJsEcho, R"(","input":)", expected, "}") : expected);
  const absl::Time t0 = absl::Now();
  client.SubmitAsync(std::move(spec), [&client, tally, t0, check, js, expected = std::move(expected)](
                                          absl::StatusOr<pb::SubmitResponse> r) mutable {
    if (!r.ok()) return tally->Finished(false, 0, r.status());
    client.WaitAsync(r->task_id(), [tally, t0, check, js, expected = std::move(expected)](absl::StatusOr<pb::Task> t) {
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
      if (!t.ok()) return tally->Finished(false, ms, t.status());
      if (t->status() != pb::TASK_STATUS_SUCCESS) {
        return tally->Finished(false, ms, absl::InternalError(absl::StrCat(t->task_id(), ": ", t->error_message())));
      }
      if (check && (js ? !SameJson(t->result(), expected) : t->result() != expected)) {
        return tally->Finished(false, ms, absl::DataLossError(absl::StrCat(t->task_id(), ": result is not the payload")));
      }
      tally->Finished(true, ms, absl::OkStatus());
    });
  });
}

void Warmup(client::Client& client, const RunOptions& options) {
  auto tally = std::make_shared<Tally>();
  for (int64_t i = 0; i < options.warmup; ++i) {
    tally->Acquire(1);
    RunOne(client, options, -1 - i, tally);
  }
  tally->Take();
}

}  // namespace

RunResult Throughput(client::Client& client, const RunOptions& options) {
  Warmup(client, options);
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
  RunOptions one = options;
  one.in_flight = 1;
  return Throughput(client, one);
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace rc::bench
