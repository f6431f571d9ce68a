#include "coordinator/http/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/str_cat.h"
#include "coordinator/http/http_server_impl.h"
#include "coordinator/http/routes.h"

namespace rc::coordinator::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

HttpServer::Impl::Impl(const HttpServerOptions& options)
    : options_(options), ioc_(std::make_unique<asio::io_context>(std::max(1, options.io_threads))) {}

HttpServer::Impl::~Impl() { Stop(); }

absl::Status HttpServer::Impl::Listen() {
  const TlsFiles& tls = options_.tls;
  if (!tls.cert.empty()) {
    ssl_.emplace(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    ssl_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                      ec);
    if (!ec) ssl_->use_certificate_chain_file(tls.cert, ec);
    if (!ec) ssl_->use_private_key_file(tls.key, asio::ssl::context::pem, ec);
    if (!ec && !tls.ca.empty()) {
      ssl_->load_verify_file(tls.ca, ec);
      if (!ec) ssl_->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("HTTP bridge: cannot load TLS files ", tls.cert, ", ", tls.key,
                                                     tls.ca.empty() ? "" : absl::StrCat(", ", tls.ca), ": ",
                                                     ec.message()));
    }
  }
  const std::string where = absl::StrCat(options_.host, ":", options_.port);
  boost::system::error_code ec;
  tcp::resolver resolver(*ioc_);
  const auto found = resolver.resolve(options_.host, std::to_string(options_.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) {
    return absl::UnavailableError(absl::StrCat("HTTP bridge cannot listen on ", where, ": ",
                                               ec ? ec.message() : "no such address"));
  }
  acceptor_ = std::make_unique<tcp::acceptor>(asio::make_strand(*ioc_));
  const tcp::endpoint endpoint = found.begin()->endpoint();
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("HTTP bridge cannot listen on ", where, ": ", ec.message()));
  port_ = acceptor_->local_endpoint().port();
  return absl::OkStatus();
}

void HttpServer::Impl::Serve(HttpHandler handler) {
  handler_ = std::move(handler);
  pool_ = std::make_unique<asio::thread_pool>(std::max(1, options_.handler_threads));
  asio::post(acceptor_->get_executor(), [this] { Accept(); });
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    io_threads_.emplace_back([this] { ioc_->run(); });
  }
}

void HttpServer::Impl::Accept() {
  acceptor_->async_accept(asio::make_strand(*ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec) {
      // Out of descriptors or the like: try again shortly rather than spin.
      auto wait = std::make_shared<asio::steady_timer>(acceptor_->get_executor(), std::chrono::milliseconds(50));
      wait->async_wait([this, wait](boost::system::error_code) { Accept(); });
      return;
    }
    OnAccept(std::move(socket));
    Accept();
  });
}

void HttpServer::Impl::OnAccept(tcp::socket socket) {
  boost::system::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;
  std::string peer = remote.address().to_string();
  std::string why;
  if (!Admit(peer, &why)) {
    ++refused_;
    // Refused cheaply: one non-blocking write of a canned 503 (plain HTTP only; a TLS
    // client would need a handshake first), then close.
    if (!ssl_.has_value()) {
      const std::string body = JsonText(Json{{"error", why}});
      const std::string reply = absl::StrCat("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n",
                                             "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
      socket.non_blocking(true, ec);
      socket.write_some(asio::buffer(reply), ec);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return;
  }
  ++accepted_;
  socket.set_option(tcp::no_delay(true), ec);
  StartConnection(std::move(socket), std::move(peer), this, ssl_.has_value() ? &*ssl_ : nullptr);
}

bool HttpServer::Impl::Admit(const std::string& address, std::string* why) {
  absl::MutexLock lock(&caps_mu_);
  if (open_ >= options_.max_connections) {
    *why = absl::StrCat("too many HTTP connections (http_max_connections is ", options_.max_connections, ")");
    return false;
  }
  int& mine = open_by_address_[address];
  if (mine >= options_.max_connections_per_address) {
    *why = absl::StrCat("too many HTTP connections from ", address, " (http_max_connections_per_address is ",
                        options_.max_connections_per_address, ")");
    return false;
  }
  ++mine;
  ++open_;
  return true;
}

void HttpServer::Impl::Track(ConnectionBase* key, std::weak_ptr<ConnectionBase> connection) {
  absl::MutexLock lock(&caps_mu_);
  live_[key] = std::move(connection);
}

void HttpServer::Impl::Release(const std::string& address, ConnectionBase* key) {
  absl::MutexLock lock(&caps_mu_);
  live_.erase(key);
  --open_;
  auto it = open_by_address_.find(address);
  if (it != open_by_address_.end() && --it->second <= 0) open_by_address_.erase(it);
}

void HttpServer::Impl::Dispatch(HttpRequest request, std::shared_ptr<Responder> responder) {
  absl::ReaderMutexLock lock(&gate_->mu);
  if (!gate_->open) return;
  asio::post(*pool_, [this, req = std::move(request), res = std::move(responder)]() mutable {
    handler_(std::move(req), std::move(res));
  });
}

void HttpServer::Impl::Post(std::function<void()> fn) {
  absl::ReaderMutexLock lock(&gate_->mu);
  if (!gate_->open || pool_ == nullptr) return;
  asio::post(*pool_, std::move(fn));
}

std::function<void()> HttpServer::Impl::After(double seconds, std::function<void()> fn) {
  std::weak_ptr<asio::steady_timer> weak;
  {
    absl::ReaderMutexLock lock(&gate_->mu);
    if (!gate_->open) return [] {};
    auto timer = std::make_shared<asio::steady_timer>(asio::make_strand(*ioc_));
    timer->expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
        std::chrono::duration<double>(seconds)));
    timer->async_wait([this, timer, fn = std::move(fn)](boost::system::error_code ec) mutable {
      if (!ec) Post(std::move(fn));
    });
    weak = timer;
  }
  // Cancelling touches the timer only on its strand and only while the server runs.
  return [gate = gate_, weak] {
    absl::ReaderMutexLock lock(&gate->mu);
    if (!gate->open) return;
    if (auto t = weak.lock()) asio::post(t->get_executor(), [t] { t->cancel(); });
  };
}

void HttpServer::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    absl::MutexLock lock(&gate_->mu);
    gate_->open = false;
  }
  if (ioc_ == nullptr) return;
  ioc_->stop();
  for (std::thread& t : io_threads_) t.join();
  io_threads_.clear();
  if (pool_ != nullptr) {
    pool_->stop();
    pool_->join();
  }
  // A connection awaiting its handler's reply holds itself; close those (running their
  // OnGone callbacks) while the context they use still exists.
  std::vector<std::shared_ptr<ConnectionBase>> live;
  {
    absl::MutexLock lock(&caps_mu_);
    for (auto& [key, weak] : live_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->Abort();
  live.clear();
  acceptor_.reset();
  // Destroying the context destroys every pending operation's handler and with it
  // every connection (closing its socket and running its OnGone callbacks) and timer.
  ioc_.reset();
}

std::string HttpServer::Impl::MetricsText() const {
  int open;
  {
    absl::MutexLock lock(&caps_mu_);
    open = open_;
  }
  return absl::StrCat(
      "# HELP retire_cluster_http_connections Open connections to the HTTP bridge.\n"
      "# TYPE retire_cluster_http_connections gauge\n"
      "retire_cluster_http_connections ", open, "\n",
      "# HELP retire_cluster_http_connections_accepted_total Connections the HTTP bridge accepted.\n"
      "# TYPE retire_cluster_http_connections_accepted_total counter\n"
      "retire_cluster_http_connections_accepted_total ", accepted_.load(), "\n",
      "# HELP retire_cluster_http_connections_refused_total Connections refused past http_max_connections or "
      "http_max_connections_per_address.\n"
      "# TYPE retire_cluster_http_connections_refused_total counter\n"
      "retire_cluster_http_connections_refused_total ", refused_.load(), "\n");
}

// ---- HttpServer ----

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Listen(const HttpServerOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Serve(HttpHandler handler) { impl_->Serve(std::move(handler)); }
Deferrer* HttpServer::deferrer() { return impl_.get(); }
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }
std::string HttpServer::MetricsText() const { return impl_->MetricsText(); }

}  // namespace rc::coordinator::http
