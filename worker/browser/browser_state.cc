// The pure parts of worker/browser/browser_pool.h: profile names, finding Chromium, its
// command line, its DevToolsActivePort file, and the state `browser` tasks return.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "worker/browser/browser_pool.h"
#include "worker/process/process_runner.h"

namespace rc::worker {
namespace {

constexpr size_t kMaxProfileName = 64;

absl::Status BadName(absl::string_view field, absl::string_view name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": profile name '", name, "' ", why));
}

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

absl::Status CheckProfileName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": profile name must not be empty"));
  if (name.size() > kMaxProfileName) {
    return BadName(field, name.substr(0, kMaxProfileName),
                   absl::StrCat("... is ", name.size(), " characters long (at most ", kMaxProfileName, ")"));
  }
  if (name.find('/') != absl::string_view::npos) return BadName(field, name, "must not contain '/'");
  if (name.find("..") != absl::string_view::npos) return BadName(field, name, "must not contain '..'");
  if (name[0] == '.') return BadName(field, name, "must not start with '.'");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return BadName(field, name, "may hold only letters, digits, '.', '_' and '-'");
  }
  return absl::OkStatus();
}

std::string FindChromium(const std::string& configured, const std::string& search_path) {
  if (!configured.empty()) return IsExecutableFile(configured) ? configured : "";
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string found = FindProgram(name, search_path);
    if (!found.empty() && IsExecutableFile(found)) return found;
  }
  return "";
}

std::string BrowserStateJson(const BrowserState& state) {
  nlohmann::json j = {
      {"profile", state.profile},
      {"running", state.running},
      {"cdp_url", state.cdp_url},
      {"pid", state.pid},
      {"headless", state.headless},
      // Rounded: a status is read by people and scripts, not by accountants.
      {"cpu_percent", static_cast<double>(static_cast<int64_t>(state.cpu_percent * 10 + 0.5)) / 10},
      {"memory_mb", static_cast<double>(static_cast<int64_t>(state.memory_mb * 10 + 0.5)) / 10},
  };
  if (state.started_at_ms > 0) j["started_at"] = FormatTimeMs(state.started_at_ms);
  if (!state.last_exit.empty()) j["last_exit"] = state.last_exit;
  // A profile name is [A-Za-z0-9._-] and last_exit is ours: no invalid UTF-8 to replace.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> ChromiumArgv(const BrowserOptions& options, const std::string& user_data_dir, bool headless,
                                      const std::string& url) {
  std::vector<std::string> argv = {
      options.chromium,
      absl::StrCat("--user-data-dir=", user_data_dir),
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "--no-first-run",
      "--no-default-browser-check",
      // Cookies are encrypted with a key from the desktop's keyring when one answers; a
      // worker has none (or one that may lock), and logins must survive restarts.
      "--password-store=basic",
      // Debian's wrapper turns the crash reporter on; its chrome_crashpad_handler leaves the
      // browser's process group, so a group kill missed it and every start leaked one.
      "--disable-crash-reporter",
      "--disable-breakpad",
  };
  if (headless) argv.push_back("--headless=new");
  if (options.no_sandbox) argv.push_back("--no-sandbox");
  if (!url.empty()) argv.push_back(url);
  return argv;
}

absl::StatusOr<int> ReadDevToolsActivePort(const std::string& user_data_dir) {
  const std::string path = absl::StrCat(user_data_dir, "/DevToolsActivePort");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, " does not exist (yet)"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  // Complete once the port's line is ended: a file caught while being written ("93",
  // or nothing) is not read as a port.
  const size_t newline = content.find('\n');
  if (newline == std::string::npos) return absl::NotFoundError(absl::StrCat(path, " is not complete (yet)"));
  int port = 0;
  if (!absl::SimpleAtoi(content.substr(0, newline), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the first line is not a port: '", content.substr(0, std::min<size_t>(newline, 40)), "'"));
  }
  return port;
}

}  // namespace rc::worker
