#include "coordinator/core/payload_loader.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {

PayloadLoader::PayloadLoader(TaskStore* store, std::function<void(std::vector<Unread>)> unread)
    : store_(store), unread_(std::move(unread)) {}

PayloadLoader::~PayloadLoader() { Stop(); }

void PayloadLoader::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PayloadLoader::Enqueue(Job job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  if (job.link != nullptr) ++waiting_[job.link.get()];
  jobs_.push_back(std::move(job));
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
}

void PayloadLoader::SendAfterLoading(std::shared_ptr<WorkerLink> link, pb::CoordinatorMessage msg,
                                     std::vector<std::string> task_ids) {
  Job job;
  job.link = std::move(link);
  job.msg = std::move(msg);
  job.task_ids = std::move(task_ids);
  Enqueue(std::move(job));
}

void PayloadLoader::NotifyAfterLoading(std::shared_ptr<TaskSink> sink, pb::Task task) {
  Job job;
  job.sink = std::move(sink);
  job.task_ids.push_back(task.task_id());
  job.task = std::move(task);
  Enqueue(std::move(job));
}

bool PayloadLoader::SendInOrder(const std::shared_ptr<WorkerLink>& link, pb::CoordinatorMessage& msg) {
  {
    absl::MutexLock lock(&mu_);
    if (!waiting_.contains(link.get()) || stopping_) return false;
  }
  Job job;
  job.link = link;
  job.msg = std::move(msg);
  Enqueue(std::move(job));
  return true;
}

void PayloadLoader::Loop() {
  while (true) {
    std::deque<Job> jobs;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](PayloadLoader* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu_) { return l->stopping_ || !l->jobs_.empty(); },
          this));
      if (jobs_.empty()) return;
      jobs.swap(jobs_);
    }
    Run(jobs);
    absl::MutexLock lock(&mu_);
    for (const Job& job : jobs) {
      if (job.link == nullptr) continue;
      auto it = waiting_.find(job.link.get());
      if (it != waiting_.end() && --it->second <= 0) waiting_.erase(it);
    }
  }
}

void PayloadLoader::Run(std::deque<Job>& jobs) {
  // One read for everything that queued meanwhile.
  std::vector<std::string> ids;
  for (const Job& job : jobs) ids.insert(ids.end(), job.task_ids.begin(), job.task_ids.end());
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> payloads =
      ids.empty() ? absl::flat_hash_map<std::string, std::string>() : store_->ReadPayloads(ids);
  if (!payloads.ok()) spdlog::error("cannot read {} task payloads: {}", ids.size(), payloads.status().ToString());
  auto lookup = [&](const std::string& id) -> const std::string* {
    if (!payloads.ok()) return nullptr;
    auto it = payloads->find(id);
    return it == payloads->end() ? nullptr : &it->second;
  };
  std::vector<Unread> unread;
  for (Job& job : jobs) {
    if (job.sink != nullptr) {
      // A snapshot without its payload still beats none (the error is logged above).
      if (const std::string* p = lookup(job.task.task_id())) job.task.mutable_spec()->set_payload(*p);
      job.sink->OnTask(std::move(job.task));
      continue;
    }
    if (!job.task_ids.empty()) {
      absl::flat_hash_map<std::string, bool> wanted;
      for (const std::string& id : job.task_ids) wanted[id] = true;
      auto* as = job.msg.mutable_assignments();
      for (int i = 0; i < as->size();) {
        pb::Assignment& a = (*as)[i];
        if (!wanted.contains(a.task_id())) {
          ++i;
          continue;
        }
        if (const std::string* p = lookup(a.task_id())) {
          a.set_payload(*p);
          ++i;
          continue;
        }
        unread.push_back(Unread{a.task_id(), a.attempt(),
                                payloads.ok() ? std::string("its payload is missing from the task store")
                                              : absl::StrCat("its payload could not be read from the task store: ",
                                                             payloads.status().message())});
        as->DeleteSubrange(i, 1);
      }
    }
    job.link->Send(std::move(job.msg));
  }
  if (!unread.empty()) unread_(std::move(unread));
}

}  // namespace rc::coordinator
