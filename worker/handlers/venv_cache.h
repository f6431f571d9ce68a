#pragma once
// Python virtualenvs for python_script, cached by the normalised requirement set and
// the interpreter version. An environment is built once even when several tasks ask at
// the same time (a per-environment mutex in this process, an flock across processes),
// built in a temporary directory and renamed into place, so a crash never leaves a
// half-built one in use. Beyond a size limit the least recently used environments not
// in use and not kept alive are removed.
//
// Environments are built inside the task's containment tier: `python -m venv` and pip
// run through the same sandbox as the task (worker/process/containment.h), with only the
// environment being built and a scratch directory writable, the worker's data dir and
// secrets hidden, and the environment a task gets before its own variables (PATH, HOME
// and TMPDIR in the scratch dir, LANG, pass_env); never the worker's own environment or
// the task's variables. Which requirements are accepted, where pip gets packages and
// whether the install has the network is policy (worker/handlers/python_requirements.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/handler.h"
#include "worker/process/process_runner.h"
#include "worker/handlers/python_requirements.h"
#include "worker/process/task_process.h"

namespace rc::worker {

class VenvCache {
 public:
  // `root`: where environments live; `limit_bytes`: total size kept (0 = no limit);
  // `requirements_mode`: WorkerConfig.python_requirements ("names" or "any"); `source`:
  // from WorkerConfig.python_index_url; `options`: the containment installs run in.
  VenvCache(std::string root, std::string python, uint64_t limit_bytes, std::string requirements_mode,
            PackageSource source, ExecutionOptions options);

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

  // The environment for `requirements`, built if needed for the task `ctx` (its stop
  // token, its internet_required). Errors as CheckRequirement for a requirement the
  // policy refuses; NOT_FOUND for a local path that does not exist on this worker;
  // FAILED_PRECONDITION for one that would uncover what this worker's sandbox hides or
  // cannot be copied, for what pip could not install ("pip could not install 'pkg':
  // ..."), when the install would need a network the task may not have (InstallNetwork)
  // or no virtualenv can be made; ABORTED when stopped.
  // `keep_alive` exempts it from eviction. `created` tells whether this call built it.
  absl::StatusOr<Lease> Acquire(const std::vector<std::string>& requirements, bool keep_alive, const TaskContext& ctx,
                                bool* created = nullptr);

  // Lower-case names, '-' for runs of -_. in the name, trimmed, sorted, deduplicated.
  static std::vector<std::string> Normalize(const std::vector<std::string>& requirements);
  // The cache key: a stable hash of the interpreter version and the normalised set.
  static std::string Key(const std::string& python_version, const std::vector<std::string>& normalized);

 private:
  // What the install sandbox may read besides the root (the local package source and
  // local requirements), and whether it has the network; errors as Acquire.
  struct InstallPlan {
    std::vector<std::string> read_only;
    bool network = false;
  };
  absl::StatusOr<InstallPlan> PlanInstall(const std::vector<std::string>& requirements, bool internet_required) const;
  absl::StatusOr<Lease> AcquireKeyLocked(const std::string& key, absl::Mutex* key_mu,
                                         const std::vector<std::string>& requirements, bool keep_alive,
                                         const InstallPlan& plan, const StopToken& stop, bool* created)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*key_mu);
  absl::Status Build(const std::string& key, const std::vector<std::string>& requirements, const InstallPlan& plan,
                     const StopToken& stop);
  void Release(const std::string& key);
  void Evict();
  absl::Mutex* KeyMutex(const std::string& key);

  const std::string root_;
  const std::string python_;
  const uint64_t limit_bytes_;
  const std::string requirements_mode_;
  const PackageSource source_;
  const ExecutionOptions options_;
  std::string python_version_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<absl::Mutex>> key_mu_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> in_use_ ABSL_GUARDED_BY(mu_);
};

// The most useful line of pip's output for a failure ("pip could not install 'x': ...").
std::string PipError(const std::string& output);

}  // namespace rc::worker
