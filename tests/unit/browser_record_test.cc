// browser_record's payload, the recorder's job and result, and what the worker needs to
// offer the type (worker/browser/browser_record.h). The recording itself runs against a
// real Chromium under Xvfb in tests/e2e/browser_test.sh.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"
#include "worker/browser/browser_record.h"

namespace rc::worker {
namespace {

using nlohmann::json;

TEST_CASE("browser_record payload: defaults and every field", "[browser_record]") {
  auto r = ParseRecordPayload(R"({"url": "http://127.0.0.1:8000/"})");
  REQUIRE(r.ok());
  CHECK(r->url == "http://127.0.0.1:8000/");
  CHECK(r->target == "python");
  CHECK_FALSE(r->profile.has_value());
  CHECK(r->max_seconds == kDefaultRecordSeconds);

  r = ParseRecordPayload(
      R"({"url": "https://example.org/a?b=c", "target": "javascript", "profile": "work", "max_seconds": 30})");
  REQUIRE(r.ok());
  CHECK(r->target == "javascript");
  CHECK(r->profile == "work");
  CHECK(r->max_seconds == 30);
  for (const std::string& t : RecordTargets()) {
    CHECK(ParseRecordPayload(json{{"url", "http://x/"}, {"target", t}}.dump()).ok());
  }
}

TEST_CASE("browser_record payload: refusals name the field", "[browser_record]") {
  auto refused = [](const std::string& payload) {
    auto r = ParseRecordPayload(payload);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  CHECK(refused("[1]") == "payload: expected a JSON object");
  CHECK(refused("{}").find("payload.url: required") == 0);
  CHECK(refused(R"({"url": "file:///etc/passwd"})").find("payload.url: 'file:///etc/passwd' is not an http") == 0);
  CHECK(refused(R"j({"url": "javascript:alert(1)"})j").find("payload.url:") == 0);
  const std::string target = refused(R"({"url": "http://x/", "target": "cobol"})");
  CHECK(target.find("payload.target: 'cobol' is not a language the recorder writes (python, python-async") == 0);
  CHECK(refused(R"({"url": "http://x/", "target": "jsonl"})").find("payload.target:") == 0);
  CHECK(refused(R"({"url": "http://x/", "target": 3})") == "payload.target: expected a string");
  CHECK(refused(R"({"url": "http://x/", "max_seconds": 0})").find("payload.max_seconds: must be more than 0") == 0);
  CHECK(refused(R"({"url": "http://x/", "max_seconds": 1e9})").find("payload.max_seconds:") == 0);
  CHECK(refused(R"({"url": "http://x/", "max_seconds": "9"})") == "payload.max_seconds: expected a number of seconds");
  CHECK(refused(R"({"url": "http://x/", "profile": 1})").find("payload.profile: expected a string") == 0);
  CHECK(refused(R"({"url": "http://x/", "output": "/tmp/x.py"})").find("payload.output: unknown key") == 0);
}

TEST_CASE("browser_record: the recorder's job", "[browser_record]") {
  RecordRequest r;
  r.url = "http://127.0.0.1/";
  r.target = "python-async";
  r.max_seconds = 12.5;
  json job = json::parse(RecordJobJson(r, "/usr/bin/chromium", "/w/t-1", ""));
  CHECK(job == json{{"url", "http://127.0.0.1/"},
                    {"target", "python-async"},
                    {"chromium", "/usr/bin/chromium"},
                    {"work_dir", "/w/t-1"},
                    {"max_seconds", 12.5}});
  job = json::parse(RecordJobJson(r, "/usr/bin/chromium", "/w/t-1", "/data/browser/profiles/work"));
  CHECK(job["user_data_dir"] == "/data/browser/profiles/work");
}

TEST_CASE("browser_record: the result from the recorder's output", "[browser_record]") {
  const std::string printed =
      "noise\n{\"code\": \"page.goto(\\\"http://x/\\\")\\n\", \"target\": \"python\", \"url\": \"http://x/\", "
      "\"ended\": \"closed\", \"seconds\": 4.2}\n\n";
  auto r = RecordResultJson(printed, std::nullopt);
  REQUIRE(r.ok());
  json j = json::parse(*r);
  CHECK(j["code"] == "page.goto(\"http://x/\")\n");
  CHECK(j["ended"] == "closed");
  CHECK_FALSE(j.contains("profile"));
  r = RecordResultJson(printed, std::string("work"));
  REQUIRE(r.ok());
  CHECK(json::parse(*r)["profile"] == "work");

  auto bad = RecordResultJson("Error: boom\n", std::nullopt);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInternal);
  CHECK(std::string(bad.status().message()).find("'Error: boom'") != std::string::npos);
  CHECK_FALSE(RecordResultJson(R"({"target": "python"})", std::nullopt).ok());
}

// What the worker lacks decides, in this order: Chromium, a display, node >= 18, the
// recorder directory.
TEST_CASE("browser_record: not offered without what it needs", "[browser_record]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "rc_browser_record_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "empty");
  { std::ofstream(dir / "bin" / "node") << "#!/bin/sh\n"; }
  fs::permissions(dir / "bin" / "node", fs::perms::owner_all);

  ExecutionOptions options;
  BrowserRecordOptions record;
  record.search_path = (dir / "bin").string();
  record.node_version = [](const std::string&) { return std::string("v18.20.4\n"); };
  record.recorder_dir = (dir / "empty").string();
  auto why = [&] {
    auto h = MakeBrowserRecordHandler(options, record);
    REQUIRE_FALSE(h.ok());
    return std::string(h.status().message());
  };
  CHECK(why().find("--allow browser_record: no Chromium") == 0);
  record.chromium = "/usr/bin/chromium";
  CHECK(why().find("--allow browser_record: no X display (start the worker with --display :N") == 0);
  record.display = ":99";
  record.node_version = [](const std::string&) { return std::string("v16.20.0\n"); };
  CHECK(why().find("--allow browser_record: needs node >= 18") == 0);
  record.node_version = [](const std::string&) { return std::string("v18.20.4\n"); };
  const std::string lacks = why();
  CHECK(lacks.find("lacks recorder.js") != std::string::npos);
  record.search_path = (dir / "empty").string();
  CHECK(why().find("--allow browser_record: no node on") == 0);

  // A directory with the recorder and the package: offered.
  record.search_path = (dir / "bin").string();
  fs::create_directories(dir / "rec" / "node_modules" / "playwright-core");
  { std::ofstream(dir / "rec" / "recorder.js") << "\n"; }
  { std::ofstream(dir / "rec" / "node_modules" / "playwright-core" / "package.json") << "{}\n"; }
  record.recorder_dir = (dir / "rec").string();
  CHECK(MakeBrowserRecordHandler(options, record).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rc::worker
