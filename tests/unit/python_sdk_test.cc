// The Python SDK inside python_script tasks: where the worker finds it (a pure choice
// over an injected probe), the setting in YAML and flags, and what a task sees: the SDK
// on PYTHONPATH with the system interpreter and in a virtualenv without system packages
// (the SDK's _deps.py reaches grpc there), at the process tier and under bwrap.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/config.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/handlers/python_sdk.h"
#include "worker/process/containment.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

const std::string kInit = "retire_cluster/__init__.py";
const std::string kStubs = "retire_cluster/v1/client_service_pb2_grpc.py";

// A filesystem of directories and what each lacks; any other directory lacks everything.
struct FakeDisk {
  std::map<std::string, std::vector<std::string>> lacks;
  std::vector<std::string> probed;
  MissingSdkFiles probe() {
    return [this](const std::string& dir) {
      probed.push_back(dir);
      auto it = lacks.find(dir);
      return it != lacks.end() ? it->second : RequiredSdkFiles();
    };
  }
};

const std::string kBuildBinary = "/src/rc/build/worker/retire-cluster-worker";

}  // namespace

TEST_CASE("python SDK: auto-discovery tries the build tree, then the install prefix") {
  FakeDisk disk;
  disk.lacks["/src/rc/python"] = {};
  auto sdk = ChoosePythonSdk(std::nullopt, kBuildBinary, disk.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir == "/src/rc/python");
  CHECK(sdk->how == "build tree");

  FakeDisk installed;
  installed.lacks["/opt/rc/share/retire-cluster/python"] = {};
  sdk = ChoosePythonSdk(std::nullopt, "/opt/rc/bin/retire-cluster-worker", installed.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir == "/opt/rc/share/retire-cluster/python");
  CHECK(sdk->how == "installed");
  CHECK(installed.probed == std::vector<std::string>{"/opt/python", "/opt/rc/share/retire-cluster/python"});

  // A build tree whose stubs were never generated is passed over, and said so.
  FakeDisk neither;
  neither.lacks["/src/rc/python"] = {kStubs};
  sdk = ChoosePythonSdk(std::nullopt, kBuildBinary, neither.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir.empty());
  CHECK(sdk->how == "not found (/src/rc/python lacks " + kStubs + "; /src/rc/build/share/retire-cluster/python lacks " +
                        kInit + ", " + kStubs + ")");

  FakeDisk unknown;
  sdk = ChoosePythonSdk(std::nullopt, "", unknown.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir.empty());
  CHECK_THAT(sdk->how, Catch::StartsWith("not found (the worker's own path is unknown"));
  CHECK(unknown.probed.empty());
}

TEST_CASE("python SDK: a configured dir wins, must hold the SDK, and \"\" turns it off") {
  FakeDisk disk;
  disk.lacks["/src/rc/python"] = {};
  disk.lacks["/srv/sdk"] = {};
  disk.lacks["/srv/half"] = {kStubs};
  auto sdk = ChoosePythonSdk(std::string("/srv/./sdk/"), kBuildBinary, disk.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir == "/srv/sdk");
  CHECK(sdk->how == "configured");
  CHECK(disk.probed == std::vector<std::string>{"/srv/sdk"});

  disk.probed.clear();
  sdk = ChoosePythonSdk(std::string(""), kBuildBinary, disk.probe());
  REQUIRE(sdk.ok());
  CHECK(sdk->dir.empty());
  CHECK(sdk->how == "off (python_sdk_dir is \"\")");
  CHECK(disk.probed.empty());

  sdk = ChoosePythonSdk(std::string("/srv/half"), kBuildBinary, disk.probe());
  REQUIRE(!sdk.ok());
  CHECK(sdk.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(sdk.status().message()), Catch::StartsWith("python_sdk_dir: /srv/half lacks " + kStubs + " ("));

  sdk = ChoosePythonSdk(std::string("/srv/none"), kBuildBinary, disk.probe());
  REQUIRE(!sdk.ok());
  CHECK_THAT(std::string(sdk.status().message()),
             Catch::StartsWith("python_sdk_dir: /srv/none lacks " + kInit + ", " + kStubs));

  sdk = ChoosePythonSdk(std::string("python"), kBuildBinary, disk.probe());
  REQUIRE(!sdk.ok());
  CHECK(std::string(sdk.status().message()) == "python_sdk_dir: 'python' is not an absolute path");
}

TEST_CASE("python SDK: the disk probe wants readable regular files") {
  const fs::path dir = fs::temp_directory_path() / NewId("rc-sdk-probe");
  fs::create_directories(dir / "retire_cluster" / "v1");
  CHECK(MissingSdkFilesOnDisk(dir.string()) == RequiredSdkFiles());
  std::ofstream(dir / kInit) << "";
  fs::create_directory(dir / kStubs);  // a directory by that name is not the stubs
  CHECK(MissingSdkFilesOnDisk(dir.string()) == std::vector<std::string>{kStubs});
  fs::remove(dir / kStubs);
  std::ofstream(dir / kStubs) << "";
  CHECK(MissingSdkFilesOnDisk(dir.string()).empty());
  fs::remove_all(dir);
  CHECK(MissingSdkFilesOnDisk("/nonexistent-rc-sdk") == RequiredSdkFiles());
  CHECK(WorkerBinaryPath() == fs::canonical("/proc/self/exe").string());
}

TEST_CASE("python SDK: python_sdk_dir in YAML and --python-sdk-dir (unset, \"\", relative)") {
  auto unset = ParseWorkerYaml("slots: 1\n", "w.yaml");
  REQUIRE(unset.ok());
  CHECK_FALSE(unset->python_sdk_dir.has_value());
  auto off = ParseWorkerYaml("python_sdk_dir: \"\"\n", "w.yaml");
  REQUIRE(off.ok());
  CHECK(off->python_sdk_dir == std::optional<std::string>(""));
  auto set = ParseWorkerYaml("python_sdk_dir: /srv/sdk\n", "w.yaml");
  REQUIRE(set.ok());
  CHECK(set->python_sdk_dir == std::optional<std::string>("/srv/sdk"));
  auto bad = ParseWorkerYaml("python_sdk_dir: [a]\n", "w.yaml");
  REQUIRE(!bad.ok());
  CHECK(std::string(bad.status().message()) == "w.yaml: key 'python_sdk_dir': expected a string");

  std::vector<FlagSpec> specs = WorkerFlagSpecs();
  CHECK_THAT(FormatFlagHelp(specs), Catch::Contains("--python-sdk-dir DIR"));
  auto parse = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    auto f = ParseFlags(args, 1, specs);
    REQUIRE(f.ok());
    return LoadWorkerConfig(*f);
  };
  auto flag_off = parse({"--python-sdk-dir", ""});
  REQUIRE(flag_off.ok());
  CHECK(flag_off->python_sdk_dir == std::optional<std::string>(""));
  auto relative = parse({"--python-sdk-dir=sdk/../python"});
  REQUIRE(relative.ok());
  CHECK(relative->python_sdk_dir == (fs::current_path() / "python").string());
  auto none = parse({});
  REQUIRE(none.ok());
  CHECK_FALSE(none->python_sdk_dir.has_value());
}

namespace {

// A stand-in SDK (the real package needs the client modules of the SDK itself): the two
// files that make it one, with the real _deps.py, whose __init__ reports where grpc came
// from. Made under the build directory, since bwrap hides the host's /tmp.
struct FakeSdk {
  fs::path root;
  explicit FakeSdk(const fs::path& base = fs::current_path()) : root(base / NewId("rc-fake-sdk")) {
    fs::create_directories(root / "retire_cluster" / "v1");
    fs::copy_file(RC_SOURCE_DIR "/python/retire_cluster/_deps.py", root / "retire_cluster" / "_deps.py");
    std::ofstream(root / kInit) << "from retire_cluster import _deps\n_deps.ensure_grpc()\nimport grpc\n"
                                   "GRPC_FROM = grpc.__file__\n";
    std::ofstream(root / kStubs) << "";
  }
  ~FakeSdk() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

struct ScriptWorker {
  WorkerConfig config;
  absl::StatusOr<std::shared_ptr<const Containment>> containment = absl::UnknownError("not made");
  explicit ScriptWorker(const std::string& tier) {
    config.data_dir = (fs::temp_directory_path() / NewId("rc-sdk-worker")).string();
    config.containment = tier;
    containment = Containment::Create(config);
  }
  ~ScriptWorker() {
    std::error_code ec;  // virtualenvs are read-only once built
    for (auto it = fs::recursive_directory_iterator(config.data_dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(config.data_dir, ec);
  }
  absl::StatusOr<std::unique_ptr<Handler>> Make(std::optional<std::string> sdk_dir) {
    PythonScriptOptions py;
    py.sdk_dir = std::move(sdk_dir);
    return MakePythonScriptHandler(ExecutionOptions::FromConfig(config, *containment), py);
  }
};

const char kReport[] =
    "import os, sys\n"
    "print(os.environ.get('PYTHONPATH'))\n"
    "print(sys.prefix != sys.base_prefix)\n"
    "import retire_cluster\n"
    "print(retire_cluster.GRPC_FROM.startswith('/usr/lib/python3/dist-packages/'))\n"
    "try:\n    open(os.path.join(os.path.dirname(retire_cluster.__file__), 'x'), 'w')\n    print('wrote')\n"
    "except OSError as e:\n    print(e.strerror)\n";

HandlerOutput RunScript(Handler* h, bool keep_alive) {
  StopToken stop(absl::Now() + absl::Seconds(120));
  nlohmann::json payload = {{"code", kReport}};
  if (keep_alive) payload["keep_alive"] = true;
  auto out = h->Run(TaskContext{NewId("task"), 1, payload.dump(), &stop, {}, nullptr, false});
  REQUIRE(out.ok());
  INFO(out->stderr);
  REQUIRE(out->failure.ok());
  return *out;
}

}  // namespace

TEST_CASE("python SDK: a python_script task imports it, with the system python and in a virtualenv") {
  FakeSdk sdk;
  ScriptWorker w("process");
  REQUIRE(w.containment.ok());
  auto h = w.Make(sdk.root.string());
  REQUIRE(h.ok());
  HandlerOutput plain = RunScript(h->get(), false);
  CHECK_THAT(plain.stdout, Catch::StartsWith(sdk.root.string() + "\nFalse\nTrue\n"));
  // keep_alive without requirements: a virtualenv without system packages; _deps.py
  // appends the base interpreter's dist-packages for grpc.
  HandlerOutput venv = RunScript(h->get(), true);
  CHECK_THAT(venv.stdout, Catch::StartsWith(sdk.root.string() + "\nTrue\nTrue\n"));

  // Turned off: the task has no PYTHONPATH and no retire_cluster.
  auto off = w.Make(std::string(""));
  REQUIRE(off.ok());
  StopToken stop(absl::Now() + absl::Seconds(60));
  auto out = (*off)->Run(TaskContext{NewId("task"), 1, nlohmann::json{{"code", kReport}}.dump(), &stop, {}, nullptr});
  REQUIRE(out.ok());
  CHECK_THAT(out->stdout, Catch::StartsWith("None\nFalse\n"));
  CHECK_THAT(out->stderr, Catch::Contains("No module named 'retire_cluster'"));

  auto missing = w.Make((sdk.root / "nothing").string());
  REQUIRE(!missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(missing.status().message()),
             Catch::StartsWith("python_sdk_dir: " + (sdk.root / "nothing").string() + " lacks " + kInit));
}

TEST_CASE("python SDK: under bwrap the SDK is bound read-only, and a hidden place is refused") {
  ScriptWorker w("bwrap");
  if (!w.containment.ok()) {
    WARN("SKIPPED: bwrap containment is unavailable here: " << w.containment.status().message());
    return;
  }
  FakeSdk sdk;
  auto h = w.Make(sdk.root.string());
  REQUIRE(h.ok());
  HandlerOutput plain = RunScript(h->get(), false);
  CHECK(plain.stdout == sdk.root.string() + "\nFalse\nTrue\nRead-only file system\n");
  HandlerOutput venv = RunScript(h->get(), true);
  CHECK(venv.stdout == sdk.root.string() + "\nTrue\nTrue\nRead-only file system\n");

  // The host's /tmp is hidden from tasks (they get a private one): binding an SDK there
  // would uncover part of it, so a configured one is refused at start.
  FakeSdk in_tmp(fs::temp_directory_path());
  auto refused = w.Make(in_tmp.root.string());
  REQUIRE(!refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(refused.status().message()) ==
        "python_sdk_dir: " + in_tmp.root.string() + " is (or holds) a path that containment bwrap hides from tasks");
}

}  // namespace rc::worker
