#include "bench/scale_sim_submit.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"

namespace rc::bench {

RateSubmitter::RateSubmitter(std::string target, double tasks_per_second, int threads)
    : target_(std::move(target)), rate_per_thread_(tasks_per_second / threads), threads_(threads) {}

RateSubmitter::~RateSubmitter() { Join(); }

void RateSubmitter::Start(absl::Time start, absl::Time end) {
  for (int t = 0; t < threads_; ++t) running_.emplace_back([this, t, start, end] { Run(t, start, end); });
}

void RateSubmitter::Join() {
  for (auto& t : running_) t.join();
  running_.clear();
}

std::string RateSubmitter::first_error() const {
  absl::MutexLock lock(&mu_);
  return first_error_;
}

std::vector<std::pair<std::string, std::string>> RateSubmitter::samples() const {
  absl::MutexLock lock(&mu_);
  return samples_;
}

void RateSubmitter::Run(int thread, absl::Time start, absl::Time end) {
  constexpr absl::Duration kTick = absl::Milliseconds(5);
  constexpr int64_t kMaxBatch = 10000;  // the coordinator's limit per call
  client::Client client(client::ClientOptions{target_, absl::Seconds(30), nullptr, ""});
  std::optional<std::pair<std::string, std::string>> last;
  absl::Status failure;
  int64_t sent = 0;
  absl::SleepFor(start - absl::Now());
  for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
    const int64_t due = static_cast<int64_t>(absl::ToDoubleSeconds(now - start) * rate_per_thread_);
    const int64_t n = std::min(due - sent, kMaxBatch);
    if (n <= 0) {
      absl::SleepFor(kTick);
      continue;
    }
    std::vector<client::pb::TaskSpec> specs(n);
    for (int64_t i = 0; i < n; ++i) {
      specs[i].set_task_type("echo");
      specs[i].set_payload(absl::StrCat(R"({"sim":)", thread, R"(,"n":)", sent + i, "}"));
    }
    sent += n;
    auto answers = client.SubmitBatch(specs);
    if (!answers.ok()) {
      refused_ += n;
      failure.Update(answers.status());
      continue;
    }
    for (size_t i = 0; i < answers->size(); ++i) {
      if (!(*answers)[i].ok()) {
        ++refused_;
        failure.Update((*answers)[i].status());
        continue;
      }
      ++accepted_;
      last.emplace((*answers)[i]->task_id(), specs[i].payload());
    }
  }
  absl::MutexLock lock(&mu_);
  if (first_error_.empty() && !failure.ok()) first_error_ = std::string(failure.message());
  if (last) samples_.push_back(std::move(*last));
}

}  // namespace rc::bench
