// retire-cluster-recovery-bench: how long a coordinator takes to come back on a data
// dir holding N unfinished tasks (open the store, load every record, rebuild the
// queue). Fills a fresh data dir through the real SqliteTaskStore first.
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/flags.h"
#include "common/ids.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/store/sqlite_task_store.h"
#include "spdlog/spdlog.h"

namespace pb = ::retire_cluster::v1;
using rc::coordinator::SqliteTaskStore;

int main(int argc, char** argv) {
  std::vector<rc::FlagSpec> specs = {{"tasks", "N", "unfinished tasks in the data dir (default 100000)"},
                                     {"help", "", "show this help"}};
  auto flags = rc::ParseFlags(std::vector<std::string>(argv, argv + argc), 1, specs);
  if (!flags.ok() || flags->Has("help")) {
    std::cout << "usage: retire-cluster-recovery-bench [--tasks N]\n" << rc::FormatFlagHelp(specs);
    return flags.ok() ? 0 : 2;
  }
  auto n = rc::FlagInt("tasks", flags->Get("tasks").value_or("100000"));
  if (!n.ok() || *n < 1) {
    std::cerr << "--tasks: expected a positive integer\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string dir = (std::filesystem::temp_directory_path() / rc::NewId("rc-recovery-bench")).string();
  {
    auto store = SqliteTaskStore::Open(dir);
    if (!store.ok()) {
      std::cerr << store.status() << "\n";
      return 1;
    }
    std::vector<pb::Task> batch;
    absl::Notification done;
    for (int64_t i = 0; i < *n; ++i) {
      pb::Task& t = batch.emplace_back();
      t.set_task_id(absl::StrCat("task-", i));
      t.set_status(i % 10 == 0 ? pb::TASK_STATUS_RUNNING : pb::TASK_STATUS_QUEUED);
      t.set_sequence(i + 1);
      t.set_created_at_ms(1'700'000'000'000 + i);
      t.mutable_spec()->set_task_type(i % 3 == 0 ? "sleep" : "echo");
      t.mutable_spec()->set_payload(absl::StrCat(R"({"i":)", i, "}"));
      t.mutable_spec()->set_priority(static_cast<pb::Priority>(1 + i % 4));
      if (i % 10 == 0) {
        t.set_attempts(1);
        t.set_worker_device_id(absl::StrCat("w", i % 7));
      }
    }
    (*store)->Write(rc::coordinator::ToRecords(std::move(batch)), [&](absl::Status s) {
      if (!s.ok()) std::cerr << s << "\n";
      done.Notify();
    });
    done.WaitForNotification();
  }
  const absl::Time start = absl::Now();
  auto store = SqliteTaskStore::Open(dir);
  const absl::Time loaded = absl::Now();  // opened: the reads happen in RecoverFromStore
  rc::coordinator::Coordinator core(rc::coordinator::CoordinatorOptions(), store->get(), rc::RealClock::Get());
  if (absl::Status s = core.RecoverFromStore(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  const absl::Time end = absl::Now();
  auto stats = core.Stats();
  std::cout << "{\"tasks\":" << *n << ",\"load_seconds\":" << absl::ToDoubleSeconds(loaded - start)
            << ",\"rebuild_seconds\":" << absl::ToDoubleSeconds(end - loaded)
            << ",\"total_seconds\":" << absl::ToDoubleSeconds(end - start)
            << ",\"queued\":" << stats.tasks().at("queued") << ",\"running\":" << stats.tasks().at("running")
            << ",\"db_bytes\":" << std::filesystem::file_size(dir + "/tasks.db") << "}\n";
  std::filesystem::remove_all(dir);
  return 0;
}
