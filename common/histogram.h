#pragma once
// A Prometheus histogram with fixed buckets: lock-free to observe, rendered in the text
// exposition format. Values are seconds.

#include <array>
#include <atomic>
#include <string>

namespace rc {

class Histogram {
 public:
  // Upper bounds in seconds, 0.5 ms to 60 s (then +Inf).
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,   10,    60};
  void Observe(double seconds);
  // "# HELP/# TYPE" lines and the _bucket/_sum/_count samples.
  std::string Render(const std::string& name, const std::string& help) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

}  // namespace rc
