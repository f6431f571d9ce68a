// One client connection: read a request (header deadline, then body deadline), hand it
// to the handler pool, keep reading while the handler works so that a client leaving
// is noticed (a long poll then unwatches), write the reply, and go round again.
// Everything here runs on the connection's strand; other threads reach it only by
// posting, through ConnectionResponder.
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/time/time.h"
#include "coordinator/http/http_server_impl.h"
#include "coordinator/http/request_parse.h"

namespace rc::coordinator::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// How long a closing connection drains what the client still sends, so that the
// client reads our last reply instead of a reset.
constexpr absl::Duration kLinger = absl::Seconds(2);

class ConnectionResponder final : public Responder {
 public:
  ConnectionResponder(std::shared_ptr<Gate> gate, std::weak_ptr<ConnectionBase> conn, uint64_t seq)
      : gate_(std::move(gate)), conn_(std::move(conn)), seq_(seq) {}

  void Reply(HttpResponse response) override {
    if (replied_.exchange(true)) return;
    absl::ReaderMutexLock lock(&gate_->mu);
    if (!gate_->open) return;
    if (auto c = conn_.lock()) c->PostReply(seq_, std::move(response));
  }
  void OnGone(std::function<void()> gone) override {
    {
      absl::ReaderMutexLock lock(&gate_->mu);
      if (gate_->open) {
        if (auto c = conn_.lock()) return c->PostOnGone(seq_, std::move(gone));
      }
    }
    gone();  // the connection (or the whole server) is already gone
  }

 private:
  const std::shared_ptr<Gate> gate_;
  const std::weak_ptr<ConnectionBase> conn_;
  const uint64_t seq_;
  std::atomic<bool> replied_{false};
};

asio::chrono::steady_clock::duration Chrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

template <class Stream>
class Connection final : public ConnectionBase {
 public:
  Connection(Stream stream, std::string peer, HttpServer::Impl* server)
      : stream_(std::move(stream)), timer_(stream_.get_executor()), peer_(std::move(peer)), server_(server) {}
  ~Connection() override {
    RunGone();
    server_->Release(peer_, this);
  }

  void Start();

  void PostReply(uint64_t seq, HttpResponse response) override {
    asio::post(stream_.get_executor(),
               [self = Self(), seq, r = std::move(response)]() mutable { self->OnReply(seq, std::move(r)); });
  }
  void PostOnGone(uint64_t seq, std::function<void()> gone) override {
    asio::post(stream_.get_executor(), [self = Self(), seq, g = std::move(gone)]() mutable {
      if (seq != self->seq_ || !self->awaiting_reply_) return g();  // answered or gone already
      self->gone_.push_back(std::move(g));
    });
  }
  void Abort() override { Close(); }

 private:
  std::shared_ptr<Connection> Self() { return std::static_pointer_cast<Connection>(shared_from_this()); }
  tcp::socket& Socket() { return beast::get_lowest_layer(stream_); }

  // The deadline of the step now in progress: when it passes, the socket closes and
  // the pending operation fails.
  void Arm(absl::Duration d) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(Chrono(d));
    timer_.async_wait([self = Self(), gen](beast::error_code ec) {
      if (!ec && gen == self->timer_gen_) self->Close();
    });
  }
  void Disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  void ReadRequest() {
    parser_.emplace();
    ConfigureParser(*parser_, server_->options().max_body);
    Arm(server_->options().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (std::optional<HttpResponse> refused = CheckFraming(*parser_)) return ReplyAndClose(std::move(*refused));
    if (!parser_->is_done() && ExpectsContinue(*parser_)) {
      Arm(server_->options().body_timeout);
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(stream_, asio::buffer(kContinue), [self = Self()](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    Arm(server_->options().body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnReadError(beast::error_code ec) {
    std::optional<HttpResponse> answer = ParseErrorResponse(ec, server_->options().body_too_large_message);
    if (!answer.has_value()) return Close();
    ReplyAndClose(std::move(*answer));
  }

  void OnRequest() {
    Disarm();
    BeastRequest message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == bhttp::verb::head;
    awaiting_reply_ = true;
    // While the handler works, nothing else need hold this connection: the watch read
    // below may not start (a pipelined request already waits in buffer_) or may end
    // (its bytes arrived). The reply, or Close, lets go.
    inflight_ = Self();
    ++seq_;
    auto responder = std::make_shared<ConnectionResponder>(server_->gate(), weak_from_this(), seq_);
    server_->Dispatch(ToHttpRequest(std::move(message), peer_), std::move(responder));
    WatchForClose();
  }

  // While a handler works, read on: EOF or an error means the client left. Bytes that
  // arrive are the next (pipelined) request's: they stay in buffer_ and the watch ends
  // there, since one read at a time is all a stream allows (a client that pipelines
  // behind a long poll is then noticed leaving only once the poll is answered).
  void WatchForClose() {
    if (watching_ || closed_ || buffer_.size() > 0) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(4096), [self = Self()](beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (ec) return self->Close();
      self->buffer_.commit(n);
      // The reply is out already: these bytes start the next request. Otherwise
      // OnWritten starts it.
      if (!self->awaiting_reply_ && !self->writing_ && !self->closed_) self->ReadRequest();
    });
  }

  void ReplyAndClose(HttpResponse response) {
    keep_alive_ = false;
    awaiting_reply_ = true;
    OnReply(seq_, std::move(response));
  }

  void OnReply(uint64_t seq, HttpResponse r) {
    if (seq != seq_ || !awaiting_reply_ || closed_) return;
    awaiting_reply_ = false;
    gone_.clear();
    // The write below holds the connection from here (the caller holds it too).
    inflight_.reset();
    response_.emplace(static_cast<bhttp::status>(r.status), 11);
    response_->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) response_->set(name, value);
    response_->keep_alive(keep_alive_);
    if (head_) {
      response_->content_length(r.body.size());
    } else {
      response_->body() = std::move(r.body);
      response_->prepare_payload();
    }
    writing_ = true;
    Arm(server_->options().body_timeout);
    bhttp::async_write(stream_, *response_, [self = Self()](beast::error_code ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(beast::error_code ec) {
    writing_ = false;
    response_.reset();
    if (ec) return Close();
    if (!keep_alive_) return Linger();
    // Idle until the next request: the header deadline runs from here.
    if (watching_) return Arm(server_->options().header_timeout);  // its bytes start the next request
    ReadRequest();
  }

  // Stops sending, then reads and drops what the client still sends (for kLinger at
  // most), so that the reply just written is not lost to a reset.
  void Linger() {
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_send, ignored);
    Arm(kLinger);
    Drain();
  }
  void Drain() {
    if (closed_) return;
    Socket().async_read_some(asio::buffer(drain_), [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->Drain();
    });
  }

  void RunGone() {
    std::vector<std::function<void()>> gone = std::move(gone_);
    gone_.clear();
    for (auto& g : gone) g();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    awaiting_reply_ = false;
    Disarm();
    RunGone();
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
    // Last: this may be the final reference (callers that are not a completion handler
    // holding Self(), i.e. Abort, hold a reference of their own).
    inflight_.reset();
  }

  Stream stream_;
  asio::steady_timer timer_;
  const std::string peer_;
  HttpServer::Impl* const server_;
  // Bounded: Beast bounds the header but not a chunk's size/extension line nor the
  // trailer, which it keeps in the buffer until their end; body bytes are copied out
  // into the message as they arrive, so the buffer never holds a body. Past the
  // bound a read fails with buffer_overflow.
  beast::flat_buffer buffer_{kMaxBufferBytes};
  std::optional<RequestParser> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::vector<std::function<void()>> gone_;
  // Set from a request's end to its reply (see OnRequest).
  std::shared_ptr<Connection> inflight_;
  char drain_[4096];
  uint64_t timer_gen_ = 0;
  uint64_t seq_ = 0;
  bool keep_alive_ = true;
  bool head_ = false;
  bool awaiting_reply_ = false;
  bool writing_ = false;
  bool watching_ = false;
  bool closed_ = false;
};

template <>
void Connection<tcp::socket>::Start() {
  ReadRequest();
}

template <>
void Connection<asio::ssl::stream<tcp::socket>>::Start() {
  Arm(server_->options().header_timeout);
  stream_.async_handshake(asio::ssl::stream_base::server, [self = Self()](beast::error_code ec) {
    if (ec) return self->Close();
    self->ReadRequest();
  });
}

}  // namespace

void StartConnection(tcp::socket socket, std::string peer, HttpServer::Impl* server, asio::ssl::context* ssl) {
  if (ssl == nullptr) {
    auto c = std::make_shared<Connection<tcp::socket>>(std::move(socket), std::move(peer), server);
    server->Track(c.get(), c);
    c->Start();
  } else {
    auto c = std::make_shared<Connection<asio::ssl::stream<tcp::socket>>>(
        asio::ssl::stream<tcp::socket>(std::move(socket), *ssl), std::move(peer), server);
    server->Track(c.get(), c);
    c->Start();
  }
}

}  // namespace rc::coordinator::http
