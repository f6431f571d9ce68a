#pragma once
// The seam between the HTTP server (coordinator/http/http_server.h), which knows sockets,
// framing and timeouts but nothing of tasks, and the routes (coordinator/http/routes.h),
// which know the Coordinator but no socket. A handler gets a parsed request and a
// Responder it may answer through at once or much later, from any thread: a long poll
// keeps only its Responder, never a thread.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace rc::coordinator::http {

struct HttpRequest {
  std::string method;  // as sent ("GET", "POST", ...); HEAD arrives as GET
  std::string path;    // percent-decoded, without the query
  // Percent-decoded ('+' is a space), in the order sent; a repeated key keeps every value.
  std::vector<std::pair<std::string, std::string>> query;
  std::string authorization;  // the Authorization header, "" when absent
  std::string peer;           // the client's address without port ("127.0.0.1", "::1")
  std::string body;

  // The first value of query key `key`, or nullptr.
  const std::string* Param(absl::string_view key) const {
    for (const auto& [k, v] : query) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Where a handler answers one request. Thread-safe; the first Reply counts, later ones
// are ignored, and a Reply after the client went away is dropped.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void Reply(HttpResponse response) = 0;
  // `gone` runs once (on any thread) if the client disconnects before the reply is
  // written, or at once if it already has; long-lived handlers release what they hold
  // there. It must not block.
  virtual void OnGone(std::function<void()> gone) = 0;
};

// Called off the I/O threads, once per request; must not block for long (wait through
// callbacks, not on a lock or a condition).
using HttpHandler = std::function<void(HttpRequest request, std::shared_ptr<Responder> responder)>;

// Deferred work for handlers: timers and hops off a callback's thread (a TaskSink may
// not call back into the Coordinator). Implementations drop work once the server stops.
class Deferrer {
 public:
  virtual ~Deferrer() = default;
  // Runs `fn` on a handler thread soon.
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` on a handler thread after `seconds`; the returned function cancels it
  // (a no-op once it ran). Both may be called from any thread.
  virtual std::function<void()> After(double seconds, std::function<void()> fn) = 0;
};

}  // namespace rc::coordinator::http
