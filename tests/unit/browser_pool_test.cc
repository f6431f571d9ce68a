// The pure parts of the worker's browser pool (worker/browser/browser_pool.h): profile
// names, Chromium's command line, its DevToolsActivePort file, the state `browser` tasks
// return, the `browser` payload and the worker config keys. (cpu_percent and memory_mb come
// from worker/process/process_sampler.h, tested in process_sampler_test.cc.) The real
// Chromium is in tests/integration/browser_handler_test.cc.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/config.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/browser/browser_handlers.h"
#include "worker/browser/browser_pool.h"
#include "worker/browser/cdp_close.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

struct TempDir {
  std::string path = (fs::temp_directory_path() / ("rc-browser-unit-" + NewId("b"))).string();
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  void Write(const std::string& name, const std::string& text) const { std::ofstream(path + "/" + name) << text; }
};

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("profile names: letters, digits, '.', '_', '-', and no path tricks", "[browser]") {
  CHECK(CheckProfileName("default", "payload.profile").ok());
  CHECK(CheckProfileName("work-2.alice_B", "payload.profile").ok());
  CHECK(CheckProfileName(std::string(64, 'a'), "payload.profile").ok());

  absl::Status slash = CheckProfileName("a/b", "payload.profile");
  CHECK(slash.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(slash) == "payload.profile: profile name 'a/b' must not contain '/'");
  CHECK(Message(CheckProfileName("..", "payload.profile")) == "payload.profile: profile name '..' must not contain '..'");
  CHECK(Message(CheckProfileName("a..b", "f")) == "f: profile name 'a..b' must not contain '..'");
  CHECK(Message(CheckProfileName(".", "f")) == "f: profile name '.' must not start with '.'");
  CHECK(Message(CheckProfileName(".hidden", "f")) == "f: profile name '.hidden' must not start with '.'");
  CHECK(Message(CheckProfileName("", "f")) == "f: profile name must not be empty");
  CHECK(Message(CheckProfileName("a b", "f")) == "f: profile name 'a b' may hold only letters, digits, '.', '_' and '-'");
  CHECK(Message(CheckProfileName("caf\xc3\xa9", "f")).find("may hold only") != std::string::npos);
  absl::Status longer = CheckProfileName(std::string(65, 'a'), "f");
  CHECK(longer.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(longer).find("is 65 characters long (at most 64)") != std::string::npos);
}

TEST_CASE("Chromium's command line: loopback CDP on a port it picks, the profile's dir", "[browser]") {
  BrowserOptions o;
  o.chromium = "/usr/bin/chromium";
  std::vector<std::string> headless = ChromiumArgv(o, "/data/browser/profiles/default", true, "");
  CHECK(headless[0] == "/usr/bin/chromium");
  CHECK(Has(headless, "--user-data-dir=/data/browser/profiles/default"));
  CHECK(Has(headless, "--remote-debugging-address=127.0.0.1"));
  CHECK(Has(headless, "--remote-debugging-port=0"));
  CHECK(Has(headless, "--no-first-run"));
  CHECK(Has(headless, "--no-default-browser-check"));
  CHECK(Has(headless, "--disable-crash-reporter"));  // its handler would leave the group
  CHECK(Has(headless, "--headless=new"));
  CHECK_FALSE(Has(headless, "--no-sandbox"));
  for (const std::string& a : headless) {
    CHECK((a.find("--remote-debugging-port=") != 0 || a == "--remote-debugging-port=0"));
  }

  o.no_sandbox = true;
  std::vector<std::string> headful = ChromiumArgv(o, "/p", false, "https://example.com/");
  CHECK_FALSE(Has(headful, "--headless=new"));
  CHECK(Has(headful, "--no-sandbox"));
  CHECK(headful.back() == "https://example.com/");  // the url comes last, after every flag
}

TEST_CASE("DevToolsActivePort: the port once the file is complete", "[browser]") {
  TempDir dir;
  absl::StatusOr<int> missing = ReadDevToolsActivePort(dir.path);
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);

  dir.Write("DevToolsActivePort", "");
  CHECK(ReadDevToolsActivePort(dir.path).status().code() == absl::StatusCode::kNotFound);
  dir.Write("DevToolsActivePort", "412");  // caught while being written: not the port 412
  CHECK(ReadDevToolsActivePort(dir.path).status().code() == absl::StatusCode::kNotFound);

  dir.Write("DevToolsActivePort", "41235\n/devtools/browser/0f6c3e4a-9b1d-4c2e-8d7f-1a2b3c4d5e6f");
  absl::StatusOr<int> port = ReadDevToolsActivePort(dir.path);
  REQUIRE(port.ok());
  CHECK(*port == 41235);

  dir.Write("DevToolsActivePort", "http\n/devtools/browser/x");
  absl::StatusOr<int> garbage = ReadDevToolsActivePort(dir.path);
  CHECK(garbage.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(garbage.status()).find(dir.path + "/DevToolsActivePort: the first line is not a port") == 0);
  dir.Write("DevToolsActivePort", "70000\n/devtools/browser/x");
  CHECK(ReadDevToolsActivePort(dir.path).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Browser.close travels as one masked WebSocket text frame", "[browser]") {
  const std::string small = rc::worker::WebSocketTextFrame("hi", 0x01020304);
  CHECK(small == std::string("\x81\x82\x01\x02\x03\x04", 6) + static_cast<char>('h' ^ 0x01) + static_cast<char>('i' ^ 0x02));
  const std::string medium = rc::worker::WebSocketTextFrame(std::string(200, 'a'), 0);
  REQUIRE(medium.size() == 2 + 2 + 4 + 200);
  CHECK(static_cast<unsigned char>(medium[1]) == (0x80 | 126));  // masked, 16-bit length follows
  CHECK(static_cast<unsigned char>(medium[2]) == 0);
  CHECK(static_cast<unsigned char>(medium[3]) == 200);
  CHECK(medium.substr(8) == std::string(200, 'a'));  // mask 0 leaves the bytes as they are
  const std::string large = rc::worker::WebSocketTextFrame(std::string(70000, 'b'), 0);
  CHECK(static_cast<unsigned char>(large[1]) == (0x80 | 127));  // 64-bit length
  CHECK(large.size() == 2 + 8 + 4 + 70000);
}

TEST_CASE("the CDP browser path is DevToolsActivePort's second line", "[browser]") {
  const std::string dir = (std::filesystem::temp_directory_path() / ("rc-cdp-path-" + NewId("b"))).string();
  std::filesystem::create_directories(dir);
  CHECK(rc::worker::ReadDevToolsBrowserPath(dir).status().code() == absl::StatusCode::kNotFound);
  std::ofstream(dir + "/DevToolsActivePort") << "41234\n";
  CHECK(rc::worker::ReadDevToolsBrowserPath(dir).status().code() == absl::StatusCode::kNotFound);  // not complete yet
  std::ofstream(dir + "/DevToolsActivePort") << "41234\n/devtools/browser/abc-def\n";
  CHECK(rc::worker::ReadDevToolsBrowserPath(dir).value_or("") == "/devtools/browser/abc-def");
  std::filesystem::remove_all(dir);
}

TEST_CASE("BrowserStateJson: the fields DESIGN.md promises", "[browser]") {
  BrowserState st;
  st.profile = "default";
  nlohmann::json stopped = nlohmann::json::parse(BrowserStateJson(st));
  CHECK(stopped["profile"] == "default");
  CHECK(stopped["running"] == false);
  CHECK(stopped["cdp_url"] == "");
  CHECK(stopped["pid"] == 0);
  CHECK_FALSE(stopped.contains("last_exit"));
  CHECK_FALSE(stopped.contains("started_at"));

  st.running = true;
  st.cdp_url = "http://127.0.0.1:41235";
  st.pid = 4242;
  st.cpu_percent = 12.345;
  st.memory_mb = 187.66;
  st.started_at_ms = 1'700'000'000'123;
  nlohmann::json running = nlohmann::json::parse(BrowserStateJson(st));
  CHECK(running["running"] == true);
  CHECK(running["cdp_url"] == "http://127.0.0.1:41235");
  CHECK(running["pid"] == 4242);
  CHECK(running["headless"] == true);
  CHECK(running["cpu_percent"].get<double>() == Approx(12.3));
  CHECK(running["memory_mb"].get<double>() == Approx(187.7));
  CHECK(running["started_at"] == "2023-11-14T22:13:20.123Z");

  BrowserState crashed;
  crashed.profile = "work";
  crashed.last_exit = "killed by signal 9";
  CHECK(nlohmann::json::parse(BrowserStateJson(crashed))["last_exit"] == "killed by signal 9");
}

TEST_CASE("browser payload: operation, profile, headless and nothing else", "[browser]") {
  absl::StatusOr<BrowserRequest> start = ParseBrowserRequest(R"({"operation": "start"})");
  REQUIRE(start.ok());
  CHECK(start->operation == "start");
  CHECK(start->profile == "default");
  CHECK(start->headless);
  absl::StatusOr<BrowserRequest> full =
      ParseBrowserRequest(R"({"operation": "status", "profile": "work", "headless": false})");
  REQUIRE(full.ok());
  CHECK(full->profile == "work");
  CHECK_FALSE(full->headless);

  auto refused = [](const std::string& payload) {
    absl::StatusOr<BrowserRequest> r = ParseBrowserRequest(payload);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    return Message(r.status());
  };
  CHECK(refused(R"({"operation": "start", "port": 9222})") ==
        "payload.port: the CDP port is chosen by Chromium (--remote-debugging-port=0); remove payload.port");
  CHECK(refused(R"({"operation": "start", "cdp_port": 9222})") ==
        "payload.cdp_port: the CDP port is chosen by Chromium (--remote-debugging-port=0); remove payload.cdp_port");
  CHECK(refused(R"({"operation": "start", "keep_alive": true, "url": "x"})") ==
        "payload: unknown keys keep_alive, url (a browser task takes operation, profile and headless)");
  CHECK(refused(R"({"operation": "restart"})") == "payload.operation: unknown operation 'restart' (start, stop or status)");
  CHECK(refused(R"({"profile": "default"})") == "payload.operation: required: start, stop or status");
  CHECK(refused(R"({"operation": "start", "profile": "../etc"})") ==
        "payload.profile: profile name '../etc' must not contain '/'");
  CHECK(refused(R"({"operation": "start", "profile": ".."})") ==
        "payload.profile: profile name '..' must not contain '..'");
  CHECK(refused(R"({"operation": "start", "headless": "yes"})") == "payload.headless: expected true or false");
  CHECK(refused("[1]") == "payload must be a JSON object");
}

TEST_CASE("FindChromium: a configured path only if executable, else the search path", "[browser]") {
  TempDir dir;
  dir.Write("chromium", "#!/bin/sh\n");
  const std::string bin = dir.path + "/chromium";
  CHECK(FindChromium(bin, "/nonexistent").empty());  // not executable yet
  chmod(bin.c_str(), 0755);
  CHECK(FindChromium(bin, "/nonexistent") == bin);
  CHECK(FindChromium("", dir.path) == bin);
  CHECK(FindChromium("", "/nonexistent").empty());
  CHECK(FindChromium(dir.path, "/nonexistent").empty());  // a directory is no browser
}

TEST_CASE("worker config: chromium_path and display", "[browser][config]") {
  absl::StatusOr<WorkerConfig> c = ParseWorkerYaml("chromium_path: /usr/bin/chromium\ndisplay: \":99\"\n", "w.yaml");
  REQUIRE(c.ok());
  CHECK(c->chromium_path == "/usr/bin/chromium");
  CHECK(c->display == ":99");
  CHECK(WorkerConfig().display.empty());  // never the worker's own $DISPLAY
  absl::StatusOr<WorkerConfig> bad = ParseWorkerYaml("display: \"99\"\n", "w.yaml");
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(bad.status()).find("display") != std::string::npos);
}

}  // namespace rc::worker
