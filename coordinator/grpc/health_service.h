#pragma once
// grpc.health.v1.Health on the coordinator's call queue (async_call.h). gRPC's default
// health service runs on the callback API, whose threads then take part in polling every
// connection and hand events to the queue's thread: it is replaced, not kept beside.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/grpc/async_call.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace rc::coordinator {

class HealthService final : public grpc::health::v1::Health::AsyncService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // SERVING for "" and each of `services` until ShuttingDown; other names are unknown.
  explicit HealthService(std::vector<std::string> services);

  // Serves Check and Watch on `queue` (after the server started).
  void Listen(CallQueue* queue);
  // Everything served turns NOT_SERVING; open watches are told.
  void ShuttingDown();

  // The status of `service` (SERVICE_UNKNOWN: not served).
  Status StatusOf(const std::string& service) const;

  // An open Watch: told each change.
  class Watcher {
   public:
    virtual void Changed(Status s) = 0;

   protected:
    ~Watcher() = default;
  };
  // Registers `w` and returns the status now (under the same lock, so no change is missed).
  Status AddWatcher(const std::string& service, std::shared_ptr<Watcher> w);
  void RemoveWatcher(const std::shared_ptr<Watcher>& w);

 private:
  const absl::flat_hash_set<std::string> services_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::coordinator
