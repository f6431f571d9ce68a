#include "worker/browser/cdp_close.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"

namespace rc::worker {
namespace {

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

bool SendAll(int fd, absl::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    if (!WaitFor(fd, POLLOUT, deadline)) return false;
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::Status Unavailable(absl::string_view step) {
  return absl::UnavailableError(absl::StrCat("Browser.close over CDP: ", step, " failed (", std::strerror(errno), ")"));
}

}  // namespace

std::string WebSocketTextFrame(absl::string_view payload, uint32_t mask) {
  std::string frame;
  frame.push_back(static_cast<char>(0x81));  // FIN, opcode 1 (text)
  const uint64_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n & 0xFF));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  const unsigned char key[4] = {static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
                                static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
  frame.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) frame.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return frame;
}

absl::StatusOr<std::string> ReadDevToolsBrowserPath(const std::string& user_data_dir) {
  std::ifstream in(user_data_dir + "/DevToolsActivePort");
  std::string port_line, path;
  if (!in || !std::getline(in, port_line) || !std::getline(in, path) || path.empty() || path[0] != '/') {
    return absl::NotFoundError(absl::StrCat(user_data_dir, "/DevToolsActivePort holds no browser path (yet)"));
  }
  return path;
}

absl::Status SendBrowserClose(int port, const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Unavailable("socket");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    return Unavailable("connect");
  }
  if (!WaitFor(fd, POLLOUT, deadline)) return Unavailable("connect");
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    errno = err;
    return Unavailable("connect");
  }
  // The key only has to be 16 random-looking bytes in base64; the server's answer is not
  // checked, since nothing is read back but the status line.
  const std::string handshake = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                                             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                             "Sec-WebSocket-Key: cmV0aXJlLWNsdXN0ZXIhIQ==\r\n"
                                             "Sec-WebSocket-Version: 13\r\n\r\n");
  if (!SendAll(fd, handshake, deadline)) return Unavailable("sending the handshake");
  std::string answer;
  char buf[512];
  while (answer.find("\r\n\r\n") == std::string::npos && answer.size() < 8192) {
    if (!WaitFor(fd, POLLIN, deadline)) return Unavailable("reading the handshake answer");
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable("reading the handshake answer");
    answer.append(buf, static_cast<size_t>(n));
  }
  if (answer.rfind("HTTP/1.1 101", 0) != 0) {
    return absl::UnavailableError(
        absl::StrCat("Browser.close over CDP: the browser refused the WebSocket (", answer.substr(0, answer.find('\r')), ")"));
  }
  std::random_device random;
  if (!SendAll(fd, WebSocketTextFrame(R"({"id":1,"method":"Browser.close"})", random()), deadline)) {
    return Unavailable("sending Browser.close");
  }
  return absl::OkStatus();
}

}  // namespace rc::worker
