#include "bench/scale_sim_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/process.h"

namespace rc::bench {
namespace {

// The coordinator to stop when a signal arrives; set while one runs.
absl::Mutex live_mu(absl::kConstInit);
CoordinatorProcess* live ABSL_GUARDED_BY(live_mu) = nullptr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "VmRSS:     1234 kB" -> MiB; 0 when the field is missing.
double StatusFieldMb(const std::string& status, const std::string& field) {
  size_t at = status.find(field + ":");
  if (at == std::string::npos) return 0;
  double kb = 0;
  std::istringstream(status.substr(at + field.size() + 1)) >> kb;
  return kb / 1024.0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::Start(
    const std::string& main_path, absl::Duration timeout, const std::vector<std::string>& extra_args) {
  if (access(main_path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot execute ", main_path));
  }
  std::string templ = (std::filesystem::temp_directory_path() / "rc-scale-sim.XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("cannot create a temporary directory");
  const std::string dir = templ;
  const std::string out_path = dir + "/main.out", log_path = dir + "/main.log";
  std::vector<std::string> args = {main_path,   "--host",     "127.0.0.1",   "--port",      "0",
                                   "--http-port", "0",        "--data-dir",  dir + "/data", "--log-level",
                                   "warn"};  // 10k "worker online" lines would cost the coordinator CPU
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // Never outlive the simulator, even when it is killed.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    sigset_t none;  // undo StopCoordinatorOnSignal's mask and SIGPIPE setting
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || log < 0) _exit(127);
    dup2(out, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(main_path.c_str(), argv.data());
    _exit(127);
  }
  std::unique_ptr<CoordinatorProcess> p(new CoordinatorProcess(pid, dir));
  {
    absl::MutexLock lock(&live_mu);
    live = p.get();
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    // "retire-cluster-main 0.1.0 listening on 127.0.0.1:PORT http 127.0.0.1:PORT"
    std::string out = ReadFile(out_path);
    size_t at = out.find(" listening on ");
    size_t end = out.find(" http ", at == std::string::npos ? 0 : at);
    if (at != std::string::npos && end != std::string::npos) {
      p->address_ = out.substr(at + 14, end - at - 14);
      return p;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;  // already reaped
      return absl::FailedPreconditionError(absl::StrCat(main_path, " exited at start:\n", p->LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(main_path, " printed no listening line within ", absl::FormatDuration(timeout), ":\n", p->LogTail()));
}

CoordinatorProcess::~CoordinatorProcess() {
  {
    absl::MutexLock lock(&live_mu);
    if (live == this) live = nullptr;
  }
  Stop();
}

void StopPid(pid_t pid, absl::Duration grace) {
  kill(pid, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void CoordinatorProcess::Stop() {
  if (pid_ > 0) {
    StopPid(pid_, absl::Seconds(10));
    pid_ = -1;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void StopCoordinatorOnSignal() {
  BlockShutdownSignals();
  std::thread([] {
    int sig = WaitForShutdownSignal();
    absl::MutexLock lock(&live_mu);  // held until exit: main cannot stop it twice
    if (live != nullptr) live->Stop();
    _exit(128 + sig);
  }).detach();
}

std::string CoordinatorProcess::LogTail() const {
  std::string log = ReadFile(dir_ + "/main.log");
  return log.size() > 2000 ? log.substr(log.size() - 2000) : log;
}

absl::StatusOr<ProcessSample> SampleProcess(pid_t pid) {
  const std::string base = absl::StrCat("/proc/", pid);
  ProcessSample s;
  s.at = absl::Now();
  std::string stat = ReadFile(base + "/stat");
  // The command name (field 2) may hold spaces; fields after its ')' are plain.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return absl::NotFoundError(absl::StrCat("cannot read ", base, "/stat"));
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) || !absl::SimpleAtod(fields[12], &stime)) {
    return absl::NotFoundError(absl::StrCat("unexpected ", base, "/stat"));
  }
  s.cpu_seconds = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::string status = ReadFile(base + "/status");
  s.rss_mb = StatusFieldMb(status, "VmRSS");
  s.peak_rss_mb = StatusFieldMb(status, "VmHWM");
  return s;
}

double CoresBetween(const ProcessSample& a, const ProcessSample& b) {
  double wall = absl::ToDoubleSeconds(b.at - a.at);
  return wall > 0 ? (b.cpu_seconds - a.cpu_seconds) / wall : 0;
}

void RaiseOpenFileLimit() {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace rc::bench
