#pragma once
// Delivers what needs payloads read from the store first: assignments of tasks whose
// payload is not held in memory (beyond the coordinator's payload budget), and snapshots
// of such tasks for watchers. The reads happen on the loader's own thread, never under
// the Coordinator's lock. Messages to one worker keep their order: once one waits here,
// later messages to that worker queue behind it (SendInOrder).

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/core/links.h"
#include "coordinator/store/task_store.h"

namespace rc::coordinator {

class PayloadLoader {
 public:
  // An assignment whose payload could not be read (the store failed or lost it).
  struct Unread {
    std::string task_id;
    int32_t attempt = 0;
    std::string why;
  };
  // `unread` is called on the loader's thread for assignments left out of their message.
  PayloadLoader(TaskStore* store, std::function<void(std::vector<Unread>)> unread);
  ~PayloadLoader();  // Stop()
  PayloadLoader(const PayloadLoader&) = delete;
  PayloadLoader& operator=(const PayloadLoader&) = delete;

  // Sends `msg` to `link` once the payloads of its assignments for `task_ids` are filled in.
  void SendAfterLoading(std::shared_ptr<WorkerLink> link, pb::CoordinatorMessage msg, std::vector<std::string> task_ids);
  // Calls sink->OnTask(task) once task.spec.payload is filled in.
  void NotifyAfterLoading(std::shared_ptr<TaskSink> sink, pb::Task task);
  // Queues `msg` behind messages to `link` still waiting here and returns true; false
  // (and `msg` untouched) when none wait, so the caller sends it directly.
  bool SendInOrder(const std::shared_ptr<WorkerLink>& link, pb::CoordinatorMessage& msg);
  // Delivers what is queued, then stops the thread; later jobs are dropped.
  void Stop();

 private:
  struct Job {
    std::shared_ptr<WorkerLink> link;  // or
    std::shared_ptr<TaskSink> sink;
    pb::CoordinatorMessage msg;
    pb::Task task;
    std::vector<std::string> task_ids;  // payloads to read
  };
  void Enqueue(Job job);
  void Loop();
  void Run(std::deque<Job>& jobs);

  TaskStore* const store_;
  const std::function<void(std::vector<Unread>)> unread_;
  absl::Mutex mu_;
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  // Jobs queued or being delivered, per worker link.
  absl::flat_hash_map<WorkerLink*, int> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started with the first job
};

}  // namespace rc::coordinator
