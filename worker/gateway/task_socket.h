#pragma once
// What a task process needs to call the cluster from inside (DESIGN.md "Workflows"): a
// Unix socket of its attempt, served by the worker's TaskGateway (task_gateway.h), and
// the variables that name it. Kept free of gRPC so the process layer and handlers can
// use it without depending on the gateway.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "retire_cluster/v1/worker_service.pb.h"

namespace rc::worker {

namespace pb = ::retire_cluster::v1;

// The names every task process gets (reserved: a payload cannot set them, task_env.h).
constexpr char kCoordinatorVar[] = "RETIRE_CLUSTER_COORDINATOR";  // unix:<socket path>
constexpr char kTokenVar[] = "RETIRE_CLUSTER_TOKEN";              // Assignment.task_token
constexpr char kTaskIdVar[] = "RETIRE_CLUSTER_TASK_ID";

// One attempt's open socket. Destroying it removes the socket file, stops accepting on it
// and cancels the calls in flight through it.
class TaskSocket {
 public:
  TaskSocket(std::string path, std::vector<std::string> environment, bool outside_task_dir,
             std::function<void()> close)
      : path_(std::move(path)),
        environment_(std::move(environment)),
        outside_task_dir_(outside_task_dir),
        close_(std::move(close)) {}
  TaskSocket(const TaskSocket&) = delete;
  TaskSocket& operator=(const TaskSocket&) = delete;
  ~TaskSocket() {
    if (close_) close_();
  }

  // Absolute; the same path inside a bwrap sandbox (which binds it when it lies outside
  // the task directory).
  const std::string& path() const { return path_; }
  // The three variables above, as NAME=VALUE.
  const std::vector<std::string>& environment() const { return environment_; }
  // True when the socket is not in the task directory (a sandbox must bind it itself).
  bool outside_task_dir() const { return outside_task_dir_; }

 private:
  const std::string path_;
  const std::vector<std::string> environment_;
  const bool outside_task_dir_;
  const std::function<void()> close_;
};

// Opens attempt sockets (the TaskGateway; a fake in tests).
class TaskSockets {
 public:
  virtual ~TaskSockets() = default;
  // A socket for the attempt `a` (its task id, attempt and task_token), in `task_dir`
  // (or, when that path is too long for a Unix socket, a short one under the worker's
  // data dir). UNAVAILABLE naming the path when it cannot be made.
  virtual absl::StatusOr<std::unique_ptr<TaskSocket>> Open(const pb::Assignment& a, const std::string& task_dir) = 0;
};

// `env` (NAME=VALUE entries) with any earlier RETIRE_CLUSTER_COORDINATOR/TOKEN/TASK_ID
// (say from pass_env) replaced by the socket's.
void AddSocketEnvironment(const TaskSocket& socket, std::vector<std::string>* env);

}  // namespace rc::worker
