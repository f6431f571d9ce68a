// Where the worker finds the JavaScript engine host and node for `js` tasks: a pure
// choice over injected probes, the setting in YAML and flags, and a worker that allows
// `js` without them refusing to start with a message that says how to fix it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/config.h"
#include "common/ids.h"
#include "worker/handlers/js_engine_dir.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/python_sdk.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

const std::string kHost = "host.js";
const std::string kCore = "node_modules/quickjs-emscripten-core/package.json";
const std::string kWasm = "node_modules/@jitl/quickjs-wasmfile-release-sync/package.json";

// Directories and what each lacks; any other directory lacks everything.
struct FakeDisk {
  std::map<std::string, std::vector<std::string>> lacks;
  std::vector<std::string> probed;
  MissingEngineFiles probe() {
    return [this](const std::string& dir) {
      probed.push_back(dir);
      auto it = lacks.find(dir);
      return it != lacks.end() ? it->second : RequiredEngineFiles();
    };
  }
};

const std::string kBuildBinary = "/src/rc/build/worker/retire-cluster-worker";

}  // namespace

TEST_CASE("js engine dir: found beside the binary, in the build tree, then the install prefix") {
  CHECK(RequiredEngineFiles() == std::vector<std::string>{kHost, kCore, kWasm});
  FakeDisk built;
  built.lacks["/src/rc/build/worker/js"] = {};
  auto dir = ChooseJsEngineDir(std::nullopt, kBuildBinary, built.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir == "/src/rc/build/worker/js");
  CHECK(dir->how == "build tree");

  FakeDisk installed;
  installed.lacks["/opt/rc/share/retire-cluster/js"] = {};
  dir = ChooseJsEngineDir(std::nullopt, "/opt/rc/bin/retire-cluster-worker", installed.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir == "/opt/rc/share/retire-cluster/js");
  CHECK(dir->how == "installed");
  CHECK(installed.probed == std::vector<std::string>{"/opt/rc/bin/js", "/opt/rc/share/retire-cluster/js"});

  // A build whose npm ci never ran (no npm) has host.js but no packages: passed over, said so.
  FakeDisk no_npm;
  no_npm.lacks["/src/rc/build/worker/js"] = {kCore, kWasm};
  dir = ChooseJsEngineDir(std::nullopt, kBuildBinary, no_npm.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir.empty());
  CHECK(dir->how == "not found (/src/rc/build/worker/js lacks " + kCore + ", " + kWasm +
                        "; /src/rc/build/share/retire-cluster/js lacks " + kHost + ", " + kCore + ", " + kWasm + ")");

  FakeDisk unknown;
  dir = ChooseJsEngineDir(std::nullopt, "", unknown.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir.empty());
  CHECK_THAT(dir->how, Catch::StartsWith("not found (the worker's own path is unknown"));
  CHECK(unknown.probed.empty());
}

TEST_CASE("js engine dir: a configured dir wins and must hold the host, \"\" turns it off") {
  FakeDisk disk;
  disk.lacks["/src/rc/build/worker/js"] = {};
  disk.lacks["/srv/js"] = {};
  disk.lacks["/srv/half"] = {kWasm};
  auto dir = ChooseJsEngineDir(std::string("/srv/./js/"), kBuildBinary, disk.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir == "/srv/js");
  CHECK(dir->how == "configured");
  CHECK(disk.probed == std::vector<std::string>{"/srv/js"});

  disk.probed.clear();
  dir = ChooseJsEngineDir(std::string(""), kBuildBinary, disk.probe());
  REQUIRE(dir.ok());
  CHECK(dir->dir.empty());
  CHECK(dir->how == "off (js_engine_dir is \"\")");
  CHECK(disk.probed.empty());

  dir = ChooseJsEngineDir(std::string("/srv/half"), kBuildBinary, disk.probe());
  REQUIRE(!dir.ok());
  CHECK(dir.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(dir.status().message()), Catch::StartsWith("js_engine_dir: /srv/half lacks " + kWasm + " ("));

  dir = ChooseJsEngineDir(std::string("js"), kBuildBinary, disk.probe());
  REQUIRE(!dir.ok());
  CHECK(std::string(dir.status().message()) == "js_engine_dir: 'js' is not an absolute path");
}

TEST_CASE("js engine dir: the disk probe wants readable regular files") {
  const fs::path dir = fs::temp_directory_path() / NewId("rc-js-probe");
  fs::create_directories(dir / "node_modules" / "quickjs-emscripten-core");
  fs::create_directories(dir / "node_modules" / "@jitl" / "quickjs-wasmfile-release-sync");
  CHECK(MissingEngineFilesOnDisk(dir.string()) == RequiredEngineFiles());
  std::ofstream(dir / kHost) << "";
  fs::create_directory(dir / kCore);  // a directory by that name is not the package
  CHECK(MissingEngineFilesOnDisk(dir.string()) == std::vector<std::string>{kCore, kWasm});
  fs::remove(dir / kCore);
  std::ofstream(dir / kCore) << "{}";
  std::ofstream(dir / kWasm) << "{}";
  CHECK(MissingEngineFilesOnDisk(dir.string()).empty());
  fs::remove_all(dir);
  CHECK(MissingEngineFilesOnDisk("/nonexistent-rc-js") == RequiredEngineFiles());
}

TEST_CASE("js engine dir: node's version is parsed, and node < 18 or none is refused saying how to get one") {
  auto v = ParseNodeVersion("v18.20.4\n");
  REQUIRE(v.ok());
  CHECK((v->major == 18 && v->minor == 20 && v->patch == 4));
  v = ParseNodeVersion("v22.0.0-nightly2024");
  REQUIRE(v.ok());
  CHECK(v->major == 22);
  for (const char* bad : {"", "18.20.4", "v18.20", "vX.1.2", "v18.20.4.1", "node v18"}) {
    INFO(bad);
    CHECK(ParseNodeVersion(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }

  std::vector<std::string> asked;
  auto find = [&](const std::string& name, const std::string& path) {
    asked.push_back(name + "@" + path);
    return std::string("/usr/bin/node");
  };
  auto printing = [](std::string text) {
    return [text](const std::string&) -> absl::StatusOr<std::string> { return text; };
  };
  auto node = FindJsNode("/usr/local/bin:/usr/bin:/bin", find, printing("v18.20.4\n"));
  REQUIRE(node.ok());
  CHECK(node->path == "/usr/bin/node");
  CHECK(node->version == "v18.20.4");
  CHECK(asked == std::vector<std::string>{"node@/usr/local/bin:/usr/bin:/bin"});

  node = FindJsNode("/bin", find, printing("v16.20.2"));
  REQUIRE(!node.ok());
  CHECK(node.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(node.status().message()) ==
        "js tasks need node >= 18: /usr/bin/node is v16.20.2; install Debian's nodejs (scripts/install-deps.sh does) "
        "or a newer node");

  node = FindJsNode("/bin", find, printing("hello"));
  REQUIRE(!node.ok());
  CHECK(std::string(node.status().message()) ==
        "js tasks need node >= 18: /usr/bin/node --version printed not a node version: 'hello'");

  node = FindJsNode("/bin", find, [](const std::string&) -> absl::StatusOr<std::string> {
    return absl::UnknownError("exit code 1: boom");
  });
  REQUIRE(!node.ok());
  CHECK(std::string(node.status().message()) == "js tasks need node >= 18: /usr/bin/node --version failed: exit code 1: boom");

  auto nowhere = [](const std::string&, const std::string&) { return std::string(); };
  node = FindJsNode("/nowhere", nowhere, printing("v20.0.0"));
  REQUIRE(!node.ok());
  CHECK(std::string(node.status().message()) ==
        "js tasks need node >= 18: no node on /nowhere; install Debian's nodejs (scripts/install-deps.sh does)");
}

TEST_CASE("js engine dir: js_engine_dir in YAML and --js-engine-dir (unset, \"\", relative)") {
  auto unset = ParseWorkerYaml("slots: 1\n", "w.yaml");
  REQUIRE(unset.ok());
  CHECK_FALSE(unset->js_engine_dir.has_value());
  auto off = ParseWorkerYaml("js_engine_dir: \"\"\n", "w.yaml");
  REQUIRE(off.ok());
  CHECK(off->js_engine_dir == std::optional<std::string>(""));
  auto set = ParseWorkerYaml("js_engine_dir: /srv/js\n", "w.yaml");
  REQUIRE(set.ok());
  CHECK(set->js_engine_dir == std::optional<std::string>("/srv/js"));
  auto bad = ParseWorkerYaml("js_engine_dir: [a]\n", "w.yaml");
  REQUIRE(!bad.ok());
  CHECK(std::string(bad.status().message()) == "w.yaml: key 'js_engine_dir': expected a string");

  std::vector<FlagSpec> specs = WorkerFlagSpecs();
  CHECK_THAT(FormatFlagHelp(specs), Catch::Contains("--js-engine-dir DIR"));
  auto parse = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    auto f = ParseFlags(args, 1, specs);
    REQUIRE(f.ok());
    return LoadWorkerConfig(*f);
  };
  auto flag_off = parse({"--js-engine-dir", ""});
  REQUIRE(flag_off.ok());
  CHECK(flag_off->js_engine_dir == std::optional<std::string>(""));
  auto relative = parse({"--js-engine-dir=engine/../js"});
  REQUIRE(relative.ok());
  CHECK(relative->js_engine_dir == (fs::current_path() / "js").string());
  auto none = parse({});
  REQUIRE(none.ok());
  CHECK_FALSE(none->js_engine_dir.has_value());

  WorkerConfig c;
  c.slots = 1;
  CHECK(JsHandlerOptions::FromConfig(c).threads == 2);  // at least two engine threads
  c.slots = 6;
  c.js_engine_dir = "/srv/js";
  CHECK(JsHandlerOptions::FromConfig(c).threads == 6);
  CHECK(JsHandlerOptions::FromConfig(c).engine_dir == std::optional<std::string>("/srv/js"));
}

TEST_CASE("js engine dir: --allow js without node or an engine host stops the worker, saying how to fix it") {
  WorkerConfig config;
  config.data_dir = (fs::temp_directory_path() / NewId("rc-js-refuse")).string();
  config.allow = {"js"};
  config.js_engine_dir = "";
  HandlerRegistry registry;
  absl::Status s = AddOptInHandlers(config, nullptr, &registry);
  if (FindProgram("node", "/usr/local/bin:/usr/bin:/bin").empty()) {
    // Then node is what is missing, whatever the engine dir.
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(s.message()), Catch::StartsWith("--allow js: js tasks need node >= 18: no node on "));
    return;
  }
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(s.message()) ==
        "--allow js: no JavaScript engine host: off (js_engine_dir is \"\"); build it with `cmake --build build "
        "--target js_engine` (npm ci into build/worker/js; scripts/install-deps.sh installs nodejs and npm), or set "
        "js_engine_dir");
  CHECK(registry.Find("js") == nullptr);

  // Under a node that is too old (a fake one printing its version).
  JsHandlerOptions old;
  old.engine_dir = "";
  old.node_version = [](const std::string&) -> absl::StatusOr<std::string> { return std::string("v16.0.0\n"); };
  ExecutionOptions options;
  auto h = MakeJsHandler(options, old);
  REQUIRE(!h.ok());
  CHECK_THAT(std::string(h.status().message()), Catch::StartsWith("--allow js: js tasks need node >= 18: "));
  CHECK_THAT(std::string(h.status().message()), Catch::Contains(" is v16.0.0; install Debian's nodejs"));
  // The opt-in types name js.
  auto types = OptInTypes();
  CHECK(std::find(types.begin(), types.end(), "js") != types.end());
}

}  // namespace rc::worker
