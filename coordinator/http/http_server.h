#pragma once
// An event-driven HTTP/1.1 server on Boost.Asio and Boost.Beast (TLS through asio::ssl
// on OpenSSL). It knows framing, timeouts and connection limits, nothing of tasks: each
// request goes to one HttpHandler (coordinator/http/http_types.h).
//
// Design assumptions: a few I/O threads serve every connection (an idle or slow client
// costs a socket and a buffer, never a thread); handlers run on a small separate pool
// and answer through a Responder whenever they are ready, so a long poll or a slow core
// call never stalls the sockets. Each connection has a deadline for its headers and one
// for its body; connections past the caps (total and per client address) are refused
// at once. One request per connection is handled at a time (pipelined requests wait in
// the buffer and are answered in order); keep-alive is the HTTP/1.1 default. A
// connection buffers at most kMaxBufferBytes (request_parse.h): bodies are copied out
// as they arrive, and an endless chunk line or trailer is refused at that bound.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "coordinator/http/http_types.h"

namespace rc::coordinator::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port
  // With `tls.cert`, HTTPS; with `tls.ca` too, a client certificate that CA signed is
  // required (the handshake refuses others).
  TlsFiles tls;
  int io_threads = 2;
  int handler_threads = 4;
  int max_connections = 4096;
  int max_connections_per_address = 512;
  // From a connection's start (or the end of its previous reply) to the end of the
  // request's headers; also bounds the TLS handshake and an idle keep-alive connection.
  absl::Duration header_timeout = absl::Seconds(10);
  // From the end of the headers to the end of the body; also bounds writing a reply.
  absl::Duration body_timeout = absl::Seconds(60);
  size_t max_body = 2 << 20;
  // The 413 answer's error text (the limit follows a config key the server does not know).
  std::string body_too_large_message = "body too large";
};

class HttpServer {
 public:
  // Binds host:port. UNAVAILABLE naming the address when it cannot listen;
  // INVALID_ARGUMENT naming the TLS files when they do not load.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Listen(const HttpServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the threads and accepting; call once. `handler` runs on the handler pool.
  void Serve(HttpHandler handler);
  // Timers and handler-pool posts for handlers; valid until the server is destroyed
  // (work handed to it after Stop is dropped).
  Deferrer* deferrer();
  int port() const;
  // Closes the listener and every connection (their pending long-lived requests see
  // OnGone), drops queued handler work, joins the threads. Idempotent.
  void Stop();
  // Prometheus text: open connections and refusals since start.
  std::string MetricsText() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rc::coordinator::http
