#include "common/process.h"

#include <csignal>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace rc {

namespace {
// The message as a JSON string (quoted, escaped).
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string quoted = nlohmann::json(std::string(msg.payload.data(), msg.payload.size())).dump();
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};
}  // namespace

void SetupLogging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_logger_mt("rc");
  spdlog::set_default_logger(logger);
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessage>('*').set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":%*})");
    spdlog::set_formatter(std::move(f));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

namespace {
sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void DisableMutexDeadlockDetection() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

void BlockShutdownSignals() {
  sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForShutdownSignalFor(absl::Duration timeout) {
  sigset_t set = ShutdownSet();
  timespec ts = absl::ToTimespec(timeout);
  int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

std::variant<ParsedFlags, int> ParseDaemonFlags(const std::string& name, const std::string& usage,
                                                std::vector<FlagSpec> specs, int argc, char** argv) {
  specs.push_back({"config", "FILE", "YAML configuration (commented examples in deploy/)"});
  specs.push_back({"help", "", "show this help"});
  specs.push_back({"version", "", "print the version"});
  absl::StatusOr<ParsedFlags> flags = ParseFlags(std::vector<std::string>(argv, argv + argc), 1, specs);
  if (!flags.ok()) {
    std::cerr << name << ": " << flags.status().message() << "\n";
    return 2;
  }
  if (flags->Has("help")) {
    std::cout << usage << FormatFlagHelp(specs);
    return 0;
  }
  if (flags->Has("version")) {
    std::cout << name << " " << RC_VERSION << "\n";
    return 0;
  }
  if (!flags->positional().empty()) {
    std::cerr << name << ": unexpected argument '" << flags->positional()[0] << "'\n";
    return 2;
  }
  return *std::move(flags);
}

int WaitForShutdownSignal() {
  sigset_t set = ShutdownSet();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace rc
