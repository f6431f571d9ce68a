// retire-cluster-cdp-relay --listen ENDPOINT --connect ENDPOINT [-- COMMAND ARGS...]
//
// Relays every connection made to --listen to --connect (worker/cdp_relay/relay.h). With a
// COMMAND it runs that command as its child and relays until the child exits, passing
// SIGTERM, SIGINT and SIGHUP on to it, and exits as the child did (its exit code, or the
// same signal). Without one it relays until SIGTERM or SIGINT. The listening socket is
// bound before the command starts, so the command can connect from its first instruction.
//
// The worker puts it in front of a task's argv inside a bwrap sandbox without network
// (worker/browser/task_browser.h). It stays in the task's process group, so a stop that
// signals the group reaches the command directly too (which then sees SIGTERM twice).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "worker/cdp_relay/relay.h"

namespace {

int wake_pipe[2] = {-1, -1};

void OnSignal(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  (void)!write(wake_pipe[1], &byte, 1);
  errno = saved;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "retire-cluster-cdp-relay: %s\n"
               "usage: retire-cluster-cdp-relay --listen tcp:HOST:PORT|unix:/PATH --connect tcp:HOST:PORT|unix:/PATH "
               "[-- COMMAND ARGS...]\n",
               why);
  return 2;
}

void Log(const std::string& line) { std::fprintf(stderr, "retire-cluster-cdp-relay: %s\n", line.c_str()); }

// The child: default signal dispositions, the parent's mask, dies with the relay.
[[noreturn]] void ExecCommand(const std::vector<char*>& argv, const sigset_t& mask, pid_t parent) {
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "retire-cluster-cdp-relay: cannot run '%s': %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_text, connect_text;
  std::vector<char*> command;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      command.assign(argv + i + 1, argv + argc);
      break;
    }
    if ((a == "--listen" || a == "--connect") && i + 1 < argc) {
      (a == "--listen" ? listen_text : connect_text) = argv[++i];
    } else {
      return Usage(("unknown or incomplete argument '" + a + "'").c_str());
    }
  }
  if (listen_text.empty() || connect_text.empty()) return Usage("--listen and --connect are required");
  absl::StatusOr<rc::worker::RelayEndpoint> listen = rc::worker::ParseRelayEndpoint(listen_text);
  absl::StatusOr<rc::worker::RelayEndpoint> target = rc::worker::ParseRelayEndpoint(connect_text);
  if (!listen.ok()) return Usage(std::string(listen.status().message()).c_str());
  if (!target.ok()) return Usage(std::string(target.status().message()).c_str());
  command.push_back(nullptr);

  if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    Log(std::string("pipe2: ") + std::strerror(errno));
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<int> fd = rc::worker::ListenOn(*listen);
  if (!fd.ok()) {
    Log(std::string(fd.status().message()));
    return 1;
  }
  pid_t child = -1;
  if (command.size() > 1) {
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    const pid_t parent = getpid();
    child = fork();
    if (child < 0) {
      Log(std::string("fork: ") + std::strerror(errno));
      return 1;
    }
    if (child == 0) ExecCommand(command, mask, parent);
  }

  int status = 0;
  bool child_done = false;
  auto on_wake = [&]() {
    unsigned char signals[64];
    ssize_t n;
    bool stop = false;
    while ((n = read(wake_pipe[0], signals, sizeof(signals))) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (signals[i] == SIGCHLD) continue;
        if (child > 0) {
          kill(child, signals[i]);  // the command decides how to end; the relay waits for it
        } else {
          stop = true;
        }
      }
    }
    if (child > 0 && waitpid(child, &status, WNOHANG) == child) child_done = stop = true;
    return stop;
  };
  absl::Status s = rc::worker::RelayLoop(*fd, *target, wake_pipe[0], on_wake, Log);
  close(*fd);
  if (listen->unix_socket) unlink(listen->path.c_str());
  if (!s.ok()) Log(std::string(s.message()));
  if (child > 0 && !child_done) {
    // Only a failing poll() gets here with the child alive: end it rather than leave it
    // running without its relay.
    kill(child, SIGTERM);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (child < 0) return s.ok() ? 0 : 1;
  if (WIFSIGNALED(status)) {
    // Die of the same signal, so whoever waits for the relay sees what the command did.
    signal(WTERMSIG(status), SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, WTERMSIG(status));
    sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    raise(WTERMSIG(status));
    return 128 + WTERMSIG(status);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
