#pragma once
// A test handler that ends its attempt the way a handler waiting for a callback does
// (browser_session with complete_on "callback"): it waits on TaskContext::completion
// beside its stop token and returns the completion: SUCCESS with its result, FAILED
// with its result and error. What each attempt was given (callback URL, token, whether
// it had an inbox) is recorded for the test. Given a `socket_root`, it also opens each
// attempt's task socket (TaskContext::open_socket) in socket_root/<task id> and records
// its path, so a test can call the cluster through it as the task's programs would.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "worker/handler.h"

namespace rc::worker {

class AwaitCallbackHandler final : public Handler {
 public:
  struct Seen {
    std::string task_id;
    std::string callback_url;
    std::string task_token;
    bool had_inbox = false;
    std::string socket_path;  // "" without a socket_root
  };

  explicit AwaitCallbackHandler(std::string socket_root = "") : socket_root_(std::move(socket_root)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    std::unique_ptr<TaskSocket> socket;  // open while the attempt runs
    if (!socket_root_.empty() && ctx.open_socket) {
      const std::string dir = socket_root_ + "/" + ctx.task_id;
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      absl::StatusOr<std::unique_ptr<TaskSocket>> opened = ctx.open_socket(dir);
      if (!opened.ok()) return opened.status();
      socket = *std::move(opened);
    }
    {
      absl::MutexLock lock(&mu_);
      seen_.push_back(Seen{ctx.task_id, ctx.callback_url, ctx.task_token, ctx.completion != nullptr,
                           socket != nullptr ? socket->path() : ""});
    }
    if (ctx.completion == nullptr) return absl::FailedPreconditionError("no completion inbox");
    // Polls the inbox; ends at once when the token stops (cancel or deadline).
    while (!ctx.stop->WaitUntil(ctx.stop->clock().Now() + absl::Milliseconds(5))) {
      std::optional<ExternalCompletion> c = ctx.completion->Get();
      if (!c.has_value()) continue;
      HandlerOutput out;
      out.result = c->result;
      if (c->status != pb::TASK_STATUS_SUCCESS) out.failure = absl::AbortedError(c->error_message);
      return out;
    }
    return absl::CancelledError("stopped before a callback");
  }

  // Waits (bounded, real time) until `n` attempts have started.
  bool WaitStarted(size_t n, absl::Duration limit = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), limit);
  }
  std::vector<Seen> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  const std::string socket_root_;
  mutable absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::worker
