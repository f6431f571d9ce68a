#include "bench/fanout_parent.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/json_view.h"

namespace rc::bench {
namespace {

namespace pb = ::retire_cluster::v1;

// What the children's callbacks (gRPC threads) and the submitting thread share.
struct Tally {
  absl::Mutex mu;
  int64_t open ABSL_GUARDED_BY(mu) = 0;  // submitted, result not yet seen
  int64_t succeeded ABSL_GUARDED_BY(mu) = 0;
  int64_t failed ABSL_GUARDED_BY(mu) = 0;
  int64_t sum ABSL_GUARDED_BY(mu) = 0;
  std::string first_error ABSL_GUARDED_BY(mu);

  void Fail(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++failed;
    if (first_error.empty()) first_error = why;
  }
  // One child's end (or the failure to wait for it).
  void Ended(const absl::StatusOr<pb::Task>& t) {
    absl::MutexLock lock(&mu);
    --open;
    if (!t.ok()) return Fail(t.status().ToString());
    if (t->status() != pb::TASK_STATUS_SUCCESS) {
      return Fail(absl::StrCat(t->task_id(), " ended ", t->status(), ": ", t->error_message()));
    }
    const Json result = ParseOrString(t->result());
    if (!result.is_object() || !result.contains("i") || !result["i"].is_number_integer()) {
      return Fail(absl::StrCat(t->task_id(), ": result without an integer \"i\": ", t->result()));
    }
    ++succeeded;
    sum += result["i"].get<int64_t>();
  }
};

}  // namespace

FanoutResult RunFanoutParent(client::Client& client, int64_t children, int64_t window, int64_t batch,
                             absl::Duration timeout) {
  FanoutResult out;
  out.children = children;
  batch = std::max<int64_t>(1, std::min(batch, window));
  // Shared with the callbacks: after a timeout they may still run (until the client closes).
  auto shared = std::make_shared<Tally>();
  Tally& tally = *shared;
  const absl::Time start = absl::Now();
  const absl::Time give_up = start + timeout;
  int64_t next = 0;
  bool stop = false;
  while (next < children && !stop) {
    const int64_t n = std::min(batch, children - next);
    {
      // Room for n more unfinished children.
      absl::MutexLock lock(&tally.mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tally.mu) { return tally.open + n <= window; };
      tally.mu.AwaitWithDeadline(absl::Condition(&room), give_up);
      if (!room()) break;
    }
    std::vector<pb::TaskSpec> specs(n);
    for (int64_t k = 0; k < n; ++k) {
      specs[k].set_task_type("echo");
      specs[k].set_payload(absl::StrCat("{\"i\":", next + k, "}"));
      // Scoped to this parent: a retried parent re-attaches to the children it submitted.
      specs[k].set_idempotency_key(absl::StrCat("fanout-", next + k));
    }
    absl::StatusOr<std::vector<absl::StatusOr<pb::SubmitResponse>>> r = client.SubmitBatch(specs);
    if (!r.ok()) {
      absl::MutexLock lock(&tally.mu);
      for (int64_t k = 0; k < n; ++k) tally.Fail(r.status().ToString());
      stop = true;  // the connection is gone: the rest would fail alike
      break;
    }
    for (absl::StatusOr<pb::SubmitResponse>& one : *r) {
      if (!one.ok()) {
        absl::MutexLock lock(&tally.mu);
        tally.Fail(one.status().ToString());
        continue;
      }
      {
        absl::MutexLock lock(&tally.mu);
        ++tally.open;
      }
      client.WaitAsync(one->task_id(), [shared](absl::StatusOr<pb::Task> t) { shared->Ended(t); });
    }
    next += n;
  }
  {
    absl::MutexLock lock(&tally.mu);
    auto all_ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tally.mu) { return tally.open == 0; };
    tally.mu.AwaitWithDeadline(absl::Condition(&all_ended), give_up);
    out.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    out.succeeded = tally.succeeded;
    out.failed = children - tally.succeeded;  // refused, failed, and never submitted or still open
    out.sum = tally.sum;
    out.first_error = tally.first_error;
    if (out.first_error.empty() && out.failed > 0) {
      out.first_error = absl::StrCat(tally.open, " children still open after ", absl::FormatDuration(timeout));
    }
  }
  return out;
}

}  // namespace rc::bench
