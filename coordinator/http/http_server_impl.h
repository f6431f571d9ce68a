#pragma once
// Internals shared by http_server.cc (listener, limits, threads) and http_connection.cc
// (one client connection). Not for use outside coordinator/http/.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/http/http_server.h"

namespace rc::coordinator::http {

// Open while the server runs. Work from other threads (replies, timers, handler posts)
// goes into the io_context or the pool only under a reader lock of an open gate, so
// Stop can close it and then tear both down without a race.
struct Gate {
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;
};

// One client connection (http_connection.cc), as the server and responders see it.
class ConnectionBase : public std::enable_shared_from_this<ConnectionBase> {
 public:
  virtual ~ConnectionBase() = default;
  // Both post to the strand; `seq` names the request they are about.
  virtual void PostReply(uint64_t seq, HttpResponse response) = 0;
  virtual void PostOnGone(uint64_t seq, std::function<void()> gone) = 0;
  // Closes the connection now (its OnGone callbacks run). Only while no I/O thread
  // runs: Stop calls it once they have joined.
  virtual void Abort() = 0;
};

class HttpServer::Impl final : public Deferrer {
 public:
  explicit Impl(const HttpServerOptions& options);
  ~Impl() override;

  absl::Status Listen();
  void Serve(HttpHandler handler);
  void Stop();
  int port() const { return port_; }
  std::string MetricsText() const;

  // Deferrer.
  void Post(std::function<void()> fn) override;
  std::function<void()> After(double seconds, std::function<void()> fn) override;

  // For connections.
  const HttpServerOptions& options() const { return options_; }
  const std::shared_ptr<Gate>& gate() const { return gate_; }
  // Runs the handler on the pool (dropped once stopped).
  void Dispatch(HttpRequest request, std::shared_ptr<Responder> responder);
  // A connection started: Stop aborts it if it is still alive then (a connection
  // waiting for its handler's reply holds itself).
  void Track(ConnectionBase* key, std::weak_ptr<ConnectionBase> connection);
  // The connection `key` from `address` ended (paired with a successful Admit).
  void Release(const std::string& address, ConnectionBase* key);

 private:
  void Accept();
  void OnAccept(boost::asio::ip::tcp::socket socket);
  // Counts the connection in; false (and why) when a cap is reached.
  bool Admit(const std::string& address, std::string* why);

  const HttpServerOptions options_;
  HttpHandler handler_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();

  mutable absl::Mutex caps_mu_;
  int open_ ABSL_GUARDED_BY(caps_mu_) = 0;
  absl::flat_hash_map<std::string, int> open_by_address_ ABSL_GUARDED_BY(caps_mu_);
  absl::flat_hash_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> live_ ABSL_GUARDED_BY(caps_mu_);
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> accepted_{0};

  // Declared after what connections touch on their way out (caps), so that destroying
  // the io_context (and with it every connection) happens first.
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::optional<boost::asio::ssl::context> ssl_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::vector<std::thread> io_threads_;
  int port_ = 0;
  bool stopped_ = false;
};

// Starts serving one accepted connection (http_connection.cc); `ssl` null for plain HTTP.
void StartConnection(boost::asio::ip::tcp::socket socket, std::string peer, HttpServer::Impl* server,
                     boost::asio::ssl::context* ssl);

}  // namespace rc::coordinator::http
