#pragma once
// A byte relay between two stream endpoints (TCP on 127.0.0.1, or a Unix socket path),
// for the CDP endpoint of a task's browser (worker/browser/task_browser.h).
//
// Why it exists: a task under the bwrap tier without internet_required runs in a network
// namespace of its own that has nothing but loopback, so it cannot reach the browser's
// CDP port on the host's 127.0.0.1. Two relays bridge that gap through a Unix socket in
// the task's directory (a file both sides see, whatever their network namespace):
//   inside the sandbox  retire-cluster-cdp-relay --listen tcp:127.0.0.1:PORT
//                       --connect unix:<task_dir>/cdp.sock -- <the task's argv>
//   in the worker       RelayThread: unix:<task_dir>/cdp.sock -> tcp:127.0.0.1:PORT
// The port number inside is the browser's own, so the ws:// URLs Chromium puts in
// /json/version stay valid inside. The relay copies bytes only: the HTTP Host and the
// WebSocket Origin headers reach Chromium exactly as the task's client sent them, so
// Chromium's checks apply as they would to a direct connection.
//
// Design assumption: a handful of connections at a time (CDP clients open one or two
// websockets), so one poll() loop over every connection is plenty; no threads per
// connection. No gRPC or protobuf here: the binary runs inside task sandboxes and must
// stay small.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rc::worker {

struct RelayEndpoint {
  bool unix_socket = false;
  std::string path;  // unix: absolute path (shorter than sun_path)
  std::string host;  // tcp: a numeric IPv4 address
  int port = 0;      // tcp: 1..65535
  std::string text;  // as given, for messages
};

// "tcp:HOST:PORT" (numeric IPv4 HOST) or "unix:/ABSOLUTE/PATH"; INVALID_ARGUMENT saying
// what is wrong otherwise. Pure.
absl::StatusOr<RelayEndpoint> ParseRelayEndpoint(absl::string_view text);

// A listening socket on `endpoint` (close-on-exec, non-blocking); UNAVAILABLE naming it
// when it cannot be bound. A Unix socket file that already exists is an error, never
// removed: it may be someone else's.
absl::StatusOr<int> ListenOn(const RelayEndpoint& endpoint);

// A connected socket to `endpoint` (close-on-exec, non-blocking once connected);
// UNAVAILABLE naming it when the connection is refused.
absl::StatusOr<int> ConnectTo(const RelayEndpoint& endpoint);

// Accepts on `listen_fd`, connects each accepted client to `target` and copies bytes both
// ways (half-closes passed on) until `wake_fd` is readable and `on_wake` returns true.
// Closes every relayed connection before returning (not listen_fd, not wake_fd). A client
// whose target refuses is closed at once; `log` hears about it. Returns OK when stopped,
// INTERNAL when poll() itself fails.
absl::Status RelayLoop(int listen_fd, const RelayEndpoint& target, int wake_fd, const std::function<bool()>& on_wake,
                       const std::function<void(const std::string&)>& log);

// RelayLoop on a thread of its own, listening on `listen` and relaying to `target`, until
// destroyed (which stops it, joins it, closes its connections and removes a Unix socket
// file it made).
class RelayThread {
 public:
  // UNAVAILABLE when `listen` cannot be bound (the thread then never starts). The socket
  // is listening when this returns, so a client may connect at once.
  static absl::StatusOr<std::unique_ptr<RelayThread>> Start(const RelayEndpoint& listen, const RelayEndpoint& target);
  ~RelayThread();
  RelayThread(const RelayThread&) = delete;
  RelayThread& operator=(const RelayThread&) = delete;

 private:
  RelayThread(RelayEndpoint listen, int listen_fd, int wake_read, int wake_write)
      : listen_(std::move(listen)), listen_fd_(listen_fd), wake_read_(wake_read), wake_write_(wake_write) {}
  const RelayEndpoint listen_;
  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  std::thread thread_;
};

}  // namespace rc::worker
