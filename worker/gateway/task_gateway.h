#pragma once
// The worker's side of "a task can call the cluster" (DESIGN.md "Workflows"): every
// attempt that starts a process gets a Unix socket (TaskSockets::Open) on which the
// worker serves ClientService and relays each call to the coordinator on the worker's
// own channel (its TLS), speaking as the attempt: `authorization: Bearer <task token>`
// replaces whatever the task sent. Other services and methods: UNIMPLEMENTED.
//
// Design assumptions:
// - One gRPC server for every attempt, sockets added and removed as attempts come and go:
//   a worker may hold hundreds of attempts in a fan-out, and a server per attempt would
//   cost its own threads, completion queues and start-up each. gRPC cannot add listening
//   ports to a running server, so the gateway listens itself (one accept thread, epoll)
//   and hands each accepted connection to the server (AddInsecureChannelFromFd). The
//   connection's descriptor names the attempt: the server's peer for it is "fd:<n>".
// - The socket lives as long as the TaskSocket the process layer holds around the task's
//   process: when it goes, the file is removed, nothing more is accepted, calls in flight
//   are cancelled and later calls on a connection still open are refused (UNAVAILABLE).
// - Filesystem permissions guard the socket (0600, in the 0700 task directory): under
//   bwrap only its own task sees it; at the `process` tier tasks share the worker's user,
//   so they are not isolated from each other's sockets any more than from its files.
// - Socket paths are limited to 107 bytes (sun_path): when `<task dir>/rc.sock` is
//   longer, the socket goes to `<data dir>/s/<random>.sock` instead (bwrap binds that
//   file into the sandbox at the same path). A data dir too long even for that is refused
//   at start.
// - While a WatchTask, WaitTasks or SubmitAndWatch call of an attempt is in flight the attempt waits:
//   the listener hears each change (the Executor lends the slot, the session tells the
//   coordinator).

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/server.h"
#include "worker/gateway/forwarded_call.h"
#include "worker/gateway/task_socket.h"

namespace rc::worker {

class TaskGateway final : public TaskSockets {
 public:
  // `channel`: the worker's channel to the coordinator. `data_dir`: the worker's, for
  // sockets whose path in the task directory would be too long. FAILED_PRECONDITION
  // naming data_dir when even those would be; INTERNAL when epoll or the server fails.
  static absl::StatusOr<std::unique_ptr<TaskGateway>> Start(std::shared_ptr<grpc::Channel> channel,
                                                            const std::string& data_dir,
                                                            AttemptLink::WaitingListener on_waiting);
  ~TaskGateway() override;

  // See TaskSockets. An assignment without a task_token (a coordinator without workflows)
  // gets no socket: nullptr, and the task runs without the variables.
  absl::StatusOr<std::unique_ptr<TaskSocket>> Open(const pb::Assignment& a, const std::string& task_dir) override;
  int open_sockets() const;

  // The path the socket of a task directory gets, or "" when too long. Pure.
  static std::string SocketPathIn(const std::string& task_dir);

 private:
  class Service;
  TaskGateway(std::shared_ptr<grpc::Channel> channel, std::string short_dir, AttemptLink::WaitingListener on_waiting);
  absl::Status StartServer();  // once, from Open
  void AcceptLoop();
  void AcceptOn(int listen_fd);
  void CloseSocket(int listen_fd, const std::string& path, const std::shared_ptr<AttemptLink>& link);
  grpc::ServerGenericBidiReactor* Dispatch(grpc::GenericCallbackServerContext* context);

  const std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  const std::string short_dir_;
  const AttemptLink::WaitingListener on_waiting_;
  const absl::flat_hash_set<std::string> methods_;  // "/retire_cluster.v1.ClientService/Submit", ...
  std::unique_ptr<Service> service_;
  // Started by the first Open: a gRPC server with callback services adds threads that poll
  // every connection of the process, the session's stream too, so each message the
  // coordinator sends would reach the session through one more thread hand-off. A worker
  // whose tasks start no process (instant built-ins) never pays that.
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: ends AcceptLoop
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<AttemptLink>> listeners_ ABSL_GUARDED_BY(mu_);  // by listening fd
  // By the descriptor handed to the server; a closed one is overwritten when reused.
  absl::flat_hash_map<int, std::shared_ptr<AttemptLink>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rc::worker
