#include "bench/floor.h"

namespace rc::bench {

absl::StatusOr<Floor> MeasureFloor(const std::string& dir, int samples, int warmup) {
  Floor f;
  auto disk = MeasureDisk(dir, samples, warmup);
  if (!disk.ok()) return disk.status();
  f.disk = std::move(*disk);
  auto net = MeasureLoopback(samples, warmup);
  if (!net.ok()) return net.status();
  f.network = *net;
  return f;
}

}  // namespace rc::bench
