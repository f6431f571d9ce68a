#include "bench/floor.h"

namespace rc::bench {

absl::StatusOr<Floor> MeasureFloor(const std::string& dir, int samples, int warmup) {
  Floor f;
  // The network first: the disk's idle gap is the two round trips of the floor.
  auto net = MeasureLoopback(samples, warmup);
  if (!net.ok()) return net.status();
  f.network = *net;
  auto disk = MeasureDisk(dir, samples, warmup, absl::Milliseconds(2 * f.network.unary_ms.p50));
  if (!disk.ok()) return disk.status();
  f.disk = std::move(*disk);
  return f;
}

}  // namespace rc::bench
