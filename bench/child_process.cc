#include "bench/child_process.h"
#include "bench/scale_sim_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/process.h"

namespace rc::bench {
namespace {

// Every child not yet stopped, for the signal thread. Stop() and Exited() hold the lock too,
// so a child is never reaped twice.
absl::Mutex children_mu(absl::kConstInit);
std::set<ChildProcess*>& Children() ABSL_EXCLUSIVE_LOCKS_REQUIRED(children_mu) {
  static auto* children = new std::set<ChildProcess*>();
  return *children;
}

// Scratch directories the signal path removes after stopping the children.
std::set<std::string>& Dirs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(children_mu) {
  static auto* dirs = new std::set<std::string>();
  return *dirs;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::vector<std::string> argv,
                                                                  const std::string& stdout_path,
                                                                  const std::string& stderr_path) {
  if (argv.empty() || access(argv[0].c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot execute ", argv.empty() ? "(nothing)" : argv[0]));
  }
  std::vector<char*> args;  // built before fork: the child only calls async-signal-safe functions
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = getpid();
  absl::MutexLock lock(&children_mu);  // the signal thread sees it from its first instant
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the bench, even when it is killed
    if (getppid() != parent) _exit(127);
    sigset_t none;  // undo StopChildrenOnSignal's mask
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) _exit(127);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  std::unique_ptr<ChildProcess> c(new ChildProcess(pid, stdout_path, stderr_path));
  Children().insert(c.get());
  return c;
}

ChildProcess::~ChildProcess() {
  absl::MutexLock lock(&children_mu);
  StopLocked(absl::Seconds(10));
  Children().erase(this);
}

void ChildProcess::Stop(absl::Duration grace) {
  absl::MutexLock lock(&children_mu);
  StopLocked(grace);
}

void ChildProcess::StopLocked(absl::Duration grace) {
  if (pid_ <= 0) return;
  StopPid(pid_, grace);
  pid_ = -1;
}

bool ChildProcess::Exited() {
  absl::MutexLock lock(&children_mu);
  if (pid_ <= 0) return true;
  int status;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
  pid_ = -1;
  return true;
}

std::string ChildProcess::StderrTail(size_t bytes) const {
  std::string log = ReadFile(stderr_path_);
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

std::string ChildProcess::Stdout() const { return ReadFile(stdout_path_); }

void StopChildrenOnSignal() {
  BlockShutdownSignals();
  std::thread([] {
    const int sig = WaitForShutdownSignal();
    children_mu.Lock();  // held until exit: nothing else stops or starts a child meanwhile
    for (ChildProcess* c : Children()) c->StopLocked(absl::Seconds(5));
    std::error_code ignored;
    for (const std::string& dir : Dirs()) std::filesystem::remove_all(dir, ignored);
    _exit(128 + sig);
  }).detach();
}

void RemoveOnSignal(const std::string& dir) {
  absl::MutexLock lock(&children_mu);
  Dirs().insert(dir);
}

void ForgetOnSignal(const std::string& dir) {
  absl::MutexLock lock(&children_mu);
  Dirs().erase(dir);
}

}  // namespace rc::bench
