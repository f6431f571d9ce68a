#pragma once
// Python virtualenvs for python_script, cached by the normalised requirement set and
// the interpreter version. An environment is built once even when several tasks ask at
// the same time (a per-environment mutex in this process, an flock across processes),
// built in a temporary directory and renamed into place, so a crash never leaves a
// half-built one in use. Beyond a size limit the least recently used environments not
// in use and not kept alive are removed. pip runs with the worker's own pip
// configuration (HOME, PIP_*, proxies), so private indexes and --find-links work.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/process_runner.h"

namespace rc::worker {

class VenvCache {
 public:
  // `root`: where environments live; `limit_bytes`: total size kept (0 = no limit).
  VenvCache(std::string root, std::string python, uint64_t limit_bytes);

  // Holds an environment in use; it is not evicted while a lease exists.
  class Lease {
   public:
    Lease(VenvCache* cache, std::string key, std::string dir) : cache_(cache), key_(std::move(key)), dir_(std::move(dir)) {}
    Lease(Lease&& o) noexcept : cache_(o.cache_), key_(std::move(o.key_)), dir_(std::move(o.dir_)) { o.cache_ = nullptr; }
    Lease(const Lease&) = delete;
    ~Lease();
    std::string python() const { return dir_ + "/bin/python"; }
    const std::string& dir() const { return dir_; }

   private:
    VenvCache* cache_;
    std::string key_;
    std::string dir_;
  };

  // The environment for `requirements`, built if needed (pip output of a failure is in
  // the error: INVALID_ARGUMENT "pip could not install 'pkg': ..." naming the package).
  // `keep_alive` exempts it from eviction. `created` tells whether this call built it.
  absl::StatusOr<Lease> Acquire(const std::vector<std::string>& requirements, bool keep_alive, const StopToken& stop,
                                bool* created = nullptr);

  // Lower-case names, '-' for runs of -_. in the name, trimmed, sorted, deduplicated.
  static std::vector<std::string> Normalize(const std::vector<std::string>& requirements);
  // The cache key: a stable hash of the interpreter version and the normalised set.
  static std::string Key(const std::string& python_version, const std::vector<std::string>& normalized);

 private:
  absl::Status Build(const std::string& key, const std::vector<std::string>& requirements, const StopToken& stop);
  void Release(const std::string& key);
  void Evict();
  absl::Mutex* KeyMutex(const std::string& key);

  const std::string root_;
  const std::string python_;
  const uint64_t limit_bytes_;
  std::string python_version_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<absl::Mutex>> key_mu_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> in_use_ ABSL_GUARDED_BY(mu_);
};

// The most useful line of pip's output for a failure ("pip could not install 'x': ...").
std::string PipError(const std::string& output);

}  // namespace rc::worker
