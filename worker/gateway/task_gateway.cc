#include "worker/gateway/task_gateway.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_posix.h"
#include "retire_cluster/v1/client_service.pb.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

constexpr char kSocketName[] = "rc.sock";
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

absl::flat_hash_set<std::string> ClientServiceMethods() {
  const google::protobuf::ServiceDescriptor* service =
      pb::SubmitRequest::descriptor()->file()->FindServiceByName("ClientService");
  absl::flat_hash_set<std::string> out;
  for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
    out.insert(absl::StrCat("/", service->full_name(), "/", service->method(i)->name()));
  }
  return out;
}

bool IsWaitingMethod(absl::string_view method) {
  return absl::EndsWith(method, "/WatchTask") || absl::EndsWith(method, "/WaitTasks") ||
         absl::EndsWith(method, "/SubmitAndWatch");
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path).lexically_normal().string() : p.string();
}

// A listening, non-blocking socket at `path` (mode 0600). UNAVAILABLE naming it.
absl::StatusOr<int> Listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket for ", path, ": ", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || chmod(path.c_str(), 0600) != 0 ||
      listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return absl::UnavailableError(absl::StrCat("cannot listen on ", path, ": ", std::strerror(err)));
  }
  return fd;
}

}  // namespace

class TaskGateway::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(TaskGateway* gateway) : gateway_(gateway) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    return gateway_->Dispatch(context);
  }

 private:
  TaskGateway* const gateway_;
};

void AddSocketEnvironment(const TaskSocket& socket, std::vector<std::string>* env) {
  std::erase_if(*env, [](const std::string& kv) {
    for (const char* name : {kCoordinatorVar, kTokenVar, kTaskIdVar}) {
      if (absl::StartsWith(kv, absl::StrCat(name, "="))) return true;
    }
    return false;
  });
  env->insert(env->end(), socket.environment().begin(), socket.environment().end());
}

std::string TaskGateway::SocketPathIn(const std::string& task_dir) {
  std::string path = (fs::path(Absolute(task_dir)) / kSocketName).string();
  return path.size() <= kMaxSocketPath ? path : "";
}

TaskGateway::TaskGateway(std::shared_ptr<grpc::Channel> channel, std::string short_dir,
                         AttemptLink::WaitingListener on_waiting)
    : channel_(std::move(channel)),
      stub_(channel_),
      short_dir_(std::move(short_dir)),
      on_waiting_(std::move(on_waiting)),
      methods_(ClientServiceMethods()) {}

absl::StatusOr<std::unique_ptr<TaskGateway>> TaskGateway::Start(std::shared_ptr<grpc::Channel> channel,
                                                               const std::string& data_dir,
                                                               AttemptLink::WaitingListener on_waiting) {
  const std::string short_dir = (fs::path(Absolute(data_dir)) / "s").string();
  const size_t longest = short_dir.size() + 1 + NewId("s").size() + 5;  // "/s-<16 hex>.sock"
  if (longest > kMaxSocketPath) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data_dir ", data_dir, " is too long for the tasks' Unix sockets (", longest, " bytes; at most ",
        kMaxSocketPath, "): choose a data_dir of at most ", kMaxSocketPath - (longest - data_dir.size()),
        " characters"));
  }
  std::unique_ptr<TaskGateway> g(new TaskGateway(std::move(channel), short_dir, std::move(on_waiting)));
  if (g->methods_.empty()) return absl::InternalError("the ClientService descriptor is missing");
  g->service_ = std::make_unique<Service>(g.get());
  g->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  g->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g->epoll_fd_ < 0 || g->wake_fd_ < 0) return absl::InternalError(absl::StrCat("epoll: ", std::strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = g->wake_fd_;
  if (epoll_ctl(g->epoll_fd_, EPOLL_CTL_ADD, g->wake_fd_, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", std::strerror(errno)));
  }
  g->accept_thread_ = std::thread([raw = g.get()] { raw->AcceptLoop(); });
  return g;
}

TaskGateway::~TaskGateway() {
  if (accept_thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    accept_thread_.join();
  }
  absl::flat_hash_map<int, std::shared_ptr<AttemptLink>> listeners;
  {
    absl::MutexLock lock(&mu_);
    listeners.swap(listeners_);
  }
  for (auto& [fd, link] : listeners) {
    close(fd);
    link->Close();
  }
  // Cancels whatever is still in flight (their upstream calls are cancelled by OnCancel).
  std::unique_ptr<grpc::Server> server;
  {
    absl::MutexLock lock(&mu_);
    server.swap(server_);
  }
  if (server != nullptr) {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server->Wait();
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

int TaskGateway::open_sockets() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(listeners_.size());
}

absl::StatusOr<std::unique_ptr<TaskSocket>> TaskGateway::Open(const pb::Assignment& a, const std::string& task_dir) {
  // Without a token the calls would go upstream as the worker itself: none at all.
  if (a.task_token().empty()) return nullptr;
  if (absl::Status s = StartServer(); !s.ok()) return s;
  std::string path = SocketPathIn(task_dir);
  const bool outside = path.empty();
  if (outside) {
    std::error_code ec;
    fs::create_directories(short_dir_, ec);
    fs::permissions(short_dir_, fs::perms::owner_all, ec);
    path = (fs::path(short_dir_) / absl::StrCat(NewId("s"), ".sock")).string();
  }
  absl::StatusOr<int> fd = Listen(path);
  if (!fd.ok()) return fd.status();
  auto link = std::make_shared<AttemptLink>(a.task_id(), a.attempt(), a.task_token(), on_waiting_);
  {
    absl::MutexLock lock(&mu_);
    listeners_[*fd] = link;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = *fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, *fd, &ev) != 0) {
      const int err = errno;
      listeners_.erase(*fd);
      close(*fd);
      unlink(path.c_str());
      return absl::UnavailableError(absl::StrCat("cannot watch ", path, ": ", std::strerror(err)));
    }
  }
  std::vector<std::string> env = {absl::StrCat(kCoordinatorVar, "=unix:", path),
                                  absl::StrCat(kTokenVar, "=", a.task_token()),
                                  absl::StrCat(kTaskIdVar, "=", a.task_id())};
  const int listen_fd = *fd;
  return std::make_unique<TaskSocket>(path, std::move(env), outside,
                                      [this, listen_fd, path, link] { CloseSocket(listen_fd, path, link); });
}

absl::Status TaskGateway::StartServer() {
  absl::MutexLock lock(&mu_);
  if (server_ != nullptr) return absl::OkStatus();
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(service_.get());
  builder.SetMaxReceiveMessageSize(64 << 20);  // as the worker's channel: payloads up to 32 MiB
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) return absl::InternalError("cannot start the task gateway's gRPC server");
  return absl::OkStatus();
}

void TaskGateway::CloseSocket(int listen_fd, const std::string& path, const std::shared_ptr<AttemptLink>& link) {
  {
    // Under the lock, so the accept thread never accepts on a closed (or reused) fd.
    absl::MutexLock lock(&mu_);
    if (listeners_.erase(listen_fd) == 1) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd, nullptr);
      close(listen_fd);
    }
  }
  unlink(path.c_str());
  link->Close();
}

void TaskGateway::AcceptLoop() {
  epoll_event events[16];
  while (true) {
    const int n = epoll_wait(epoll_fd_, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      spdlog::error("task gateway: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_fd_) return;
      AcceptOn(events[i].data.fd);
    }
  }
}

void TaskGateway::AcceptOn(int listen_fd) {
  std::vector<int> accepted;
  grpc::Server* server = nullptr;
  {
    absl::MutexLock lock(&mu_);
    server = server_.get();  // started before the first socket listened (Open)
    auto it = listeners_.find(listen_fd);
    if (it == listeners_.end()) return;  // closed meanwhile
    while (true) {
      const int conn = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (conn < 0) break;  // EAGAIN: no more for now (or an error the next event retries)
      connections_[conn] = it->second;
      accepted.push_back(conn);
    }
  }
  for (int conn : accepted) grpc::AddInsecureChannelFromFd(server, conn);
}

grpc::ServerGenericBidiReactor* TaskGateway::Dispatch(grpc::GenericCallbackServerContext* context) {
  const std::string& method = context->method();
  if (!methods_.contains(method)) {
    return ForwardedCall::Refuse(grpc::Status(
        grpc::StatusCode::UNIMPLEMENTED,
        absl::StrCat("a task's socket serves only retire_cluster.v1.ClientService, not ", method)));
  }
  std::shared_ptr<AttemptLink> link;
  int fd = -1;
  const std::string peer = context->peer();
  if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(absl::string_view(peer).substr(3), &fd)) {
    absl::MutexLock lock(&mu_);
    auto it = connections_.find(fd);
    if (it != connections_.end()) link = it->second;
  }
  if (link == nullptr) {
    return ForwardedCall::Refuse(
        grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("task gateway: no attempt for connection ", peer)));
  }
  return ForwardedCall::Start(context, &stub_, std::move(link), IsWaitingMethod(method));
}

}  // namespace rc::worker
