#include "worker/cdp_relay/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <vector>

#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rc::worker {
namespace {

// How much one direction of a connection buffers before it stops reading from its source
// (a slow reader then slows the writer down, as TCP would).
constexpr size_t kBufferCap = 256 << 10;
// More simultaneous connections than any CDP client opens; further clients are closed.
constexpr size_t kMaxConnections = 128;

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The sockaddr of an endpoint, and its length.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

Address AddressOf(const RelayEndpoint& e) {
  Address a;
  if (e.unix_socket) {
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, e.path.data(), e.path.size());
    a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + e.path.size() + 1);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(e.port));
    inet_pton(AF_INET, e.host.c_str(), &in->sin_addr);
    a.length = sizeof(sockaddr_in);
  }
  return a;
}

// One relayed connection: bytes from `a` to `b` and back, each direction with a buffer.
struct Pipe {
  int from;
  int to;
  std::string buffer;
  bool eof = false;   // `from` said it sends no more
  bool shut = false;  // and that was passed on to `to` (shutdown SHUT_WR)
  bool Readable() const { return !eof && buffer.size() < kBufferCap; }
};

struct Connection {
  Pipe up;    // client -> target
  Pipe down;  // target -> client
  bool failed = false;
  bool Done() const { return failed || (up.shut && down.shut); }
};

// Reads what `p.from` has into p.buffer. False on an error (the connection is dropped).
bool ReadInto(Pipe& p) {
  char chunk[64 << 10];
  for (;;) {
    const size_t room = kBufferCap - p.buffer.size();
    if (room == 0) return true;
    const ssize_t n = recv(p.from, chunk, std::min(room, sizeof(chunk)), 0);
    if (n > 0) {
      p.buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      p.eof = true;
      return true;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

// Writes what p.buffer holds to `p.to`, and passes an end of stream on once it is empty.
bool WriteFrom(Pipe& p) {
  while (!p.buffer.empty()) {
    const ssize_t n = send(p.to, p.buffer.data(), p.buffer.size(), MSG_NOSIGNAL);
    if (n > 0) {
      p.buffer.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  if (p.eof && !p.shut) {
    shutdown(p.to, SHUT_WR);
    p.shut = true;
  }
  return true;
}

}  // namespace

absl::StatusOr<RelayEndpoint> ParseRelayEndpoint(absl::string_view text) {
  RelayEndpoint e;
  e.text = std::string(text);
  if (absl::ConsumePrefix(&text, "unix:")) {
    e.unix_socket = true;
    e.path = std::string(text);
    if (e.path.empty() || e.path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': a unix: path must be absolute"));
    }
    if (e.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': the path is longer than ",
                                                     sizeof(sockaddr_un::sun_path) - 1, " bytes"));
    }
    return e;
  }
  if (absl::ConsumePrefix(&text, "tcp:")) {
    const size_t colon = text.rfind(':');
    in_addr ignored;
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': expected tcp:HOST:PORT"));
    }
    e.host = std::string(text.substr(0, colon));
    if (inet_pton(AF_INET, e.host.c_str(), &ignored) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': HOST must be a numeric IPv4 address"));
    }
    if (!absl::SimpleAtoi(text.substr(colon + 1), &e.port) || e.port < 1 || e.port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': PORT must be 1..65535"));
    }
    return e;
  }
  return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.text, "': expected tcp:HOST:PORT or unix:/PATH"));
}

absl::StatusOr<int> ListenOn(const RelayEndpoint& e) {
  const int fd = socket(e.unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(Errno("socket"));
  if (!e.unix_socket) {
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  const Address a = AddressOf(e);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length) != 0 || listen(fd, 64) != 0) {
    const std::string why = Errno(absl::StrCat("listening on ", e.text).c_str());
    close(fd);
    return absl::UnavailableError(why);
  }
  return fd;
}

absl::StatusOr<int> ConnectTo(const RelayEndpoint& e) {
  const int fd = socket(e.unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(Errno("socket"));
  const Address a = AddressOf(e);
  int r;
  do {
    r = connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    const std::string why = Errno(absl::StrCat("connecting to ", e.text).c_str());
    close(fd);
    return absl::UnavailableError(why);
  }
  SetNonBlocking(fd);
  return fd;
}

absl::Status RelayLoop(int listen_fd, const RelayEndpoint& target, int wake_fd, const std::function<bool()>& on_wake,
                       const std::function<void(const std::string&)>& log) {
  std::list<Connection> connections;
  auto close_all = [&] {
    for (Connection& c : connections) {
      close(c.up.from);
      close(c.up.to);
    }
    connections.clear();
  };
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({listen_fd, static_cast<short>(connections.size() < kMaxConnections ? POLLIN : 0), 0});
    for (const Connection& c : connections) {
      // Each socket is read while its direction has room and written while the other
      // direction holds bytes for it. A socket with nothing to wait for is left out
      // (fd -1): a peer that hung up would otherwise wake poll() again and again.
      const short client = (c.up.Readable() ? POLLIN : 0) | (c.down.buffer.empty() ? 0 : POLLOUT);
      const short server = (c.down.Readable() ? POLLIN : 0) | (c.up.buffer.empty() ? 0 : POLLOUT);
      fds.push_back({client != 0 ? c.up.from : -1, client, 0});
      fds.push_back({server != 0 ? c.up.to : -1, server, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      close_all();
      return absl::InternalError(Errno("poll"));
    }
    if (fds[0].revents != 0 && on_wake()) break;
    size_t i = 2;
    for (Connection& c : connections) {
      const short client = fds[i++].revents;
      const short server = fds[i++].revents;
      // POLLHUP still leaves the peer's last bytes to read: read until EOF. An error on a
      // socket shows as a failed recv() or send() below.
      constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
      if ((client & kReadable) != 0 && c.up.Readable() && !ReadInto(c.up)) c.failed = true;
      if ((server & kReadable) != 0 && c.down.Readable() && !ReadInto(c.down)) c.failed = true;
      if (!c.failed && !WriteFrom(c.up)) c.failed = true;
      if (!c.failed && !WriteFrom(c.down)) c.failed = true;
    }
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->Done()) {
        close(it->up.from);
        close(it->up.to);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (client < 0) break;  // EAGAIN: no more waiting; anything else: try on the next wake
        absl::StatusOr<int> server = ConnectTo(target);
        if (!server.ok()) {
          log(std::string(server.status().message()));
          close(client);
          continue;
        }
        connections.push_back(Connection{Pipe{client, *server, {}}, Pipe{*server, client, {}}});
        if (connections.size() >= kMaxConnections) break;
      }
    }
  }
  close_all();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RelayThread>> RelayThread::Start(const RelayEndpoint& listen,
                                                                const RelayEndpoint& target) {
  absl::StatusOr<int> fd = ListenOn(listen);
  if (!fd.ok()) return fd.status();
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    const std::string why = Errno("pipe2");
    close(*fd);
    if (listen.unix_socket) unlink(listen.path.c_str());
    return absl::UnavailableError(why);
  }
  std::unique_ptr<RelayThread> t(new RelayThread(listen, *fd, wake[0], wake[1]));
  t->thread_ = std::thread([target, self = t.get()] {
    // Only the destructor wakes it, and only to stop. A failing poll() ends the thread;
    // clients then see refused connections, which their task reports.
    (void)RelayLoop(self->listen_fd_, target, self->wake_read_, [] { return true; }, [](const std::string&) {});
  });
  return t;
}

RelayThread::~RelayThread() {
  const char byte = 1;
  (void)!write(wake_write_, &byte, 1);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
  if (listen_.unix_socket) unlink(listen_.path.c_str());
}

}  // namespace rc::worker
