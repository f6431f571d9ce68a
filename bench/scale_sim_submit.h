#pragma once
// The scale simulator's load: echo tasks submitted through the C++ SDK at a fixed
// total rate over a time window.

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rc::bench {

// Several threads, each with its own Client (channel); every few milliseconds each
// sends its share of what the schedule says is due in one SubmitBatch call, so a slow
// call makes the next batch larger and the rate holds as long as the coordinator keeps
// up. Payloads are distinct ({"sim": thread, "n": index}) so echoed results can be checked.
class RateSubmitter {
 public:
  RateSubmitter(std::string target, double tasks_per_second, int threads);
  ~RateSubmitter();  // Join()

  // Submits from `start` until `end`.
  void Start(absl::Time start, absl::Time end);
  void Join();

  int64_t accepted() const { return accepted_.load(); }
  int64_t refused() const { return refused_.load(); }  // refused specs and failed calls
  std::string first_error() const;
  // Each thread's last accepted task: (task id, payload).
  std::vector<std::pair<std::string, std::string>> samples() const;

 private:
  void Run(int thread, absl::Time start, absl::Time end);

  const std::string target_;
  const double rate_per_thread_;
  const int threads_;
  std::vector<std::thread> running_;
  std::atomic<int64_t> accepted_{0}, refused_{0};
  mutable absl::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> samples_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::bench
