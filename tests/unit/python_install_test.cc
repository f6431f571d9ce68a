// python_script dependency installs run inside the task's containment (issue 12, repro
// 2): under bwrap, with python_requirements: any, a local source package whose setup.py
// tries to write outside its build, read the worker's key and token, reach a 127.0.0.1
// service and see the worker's environment, manages none of it. Everything local: a
// wheel made by tests/fixtures/make_wheel.py, no index, no network. SKIPPED with a WARN
// where bwrap is unavailable.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/unit/loopback_listener.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "worker/process/containment.h"
#include "worker/handlers/opt_in_handlers.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

using Listener = rc::testing::LoopbackListener;

void MakeWritable(const fs::path& root) {
  std::error_code ec;  // virtualenvs are read-only once built
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
}

// A bwrap worker's data dir with a stand-in key, a token file outside it, a local
// wheelhouse as the package source and a source package outside everything.
// Not under /tmp: a bwrap worker refuses local requirements there (tasks get a private /tmp).
struct Install {
  fs::path root = fs::current_path() / NewId("rc-install-test");
  fs::path token = fs::current_path() / NewId("rc-install-test-token");
  WorkerConfig config;
  absl::StatusOr<std::shared_ptr<const Containment>> containment = absl::UnknownError("not made");
  uint64_t cache_limit_bytes = 0;

  explicit Install(const std::string& tier = "bwrap") {
    config.data_dir = (root / "data").string();
    fs::create_directories(config.data_dir);
    fs::create_directories(root / "wheels");
    std::ofstream(root / "data" / "worker_key.pem") << "KEY-SECRET-1234";
    std::ofstream(token) << "TOKEN-SECRET-5678";
    config.token_file = token.string();
    config.containment = tier;
    const std::string cmd =
        "/usr/bin/python3 " RC_SOURCE_DIR "/tests/fixtures/make_wheel.py " + (root / "wheels").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    containment = Containment::Create(config);
  }
  ~Install() {
    MakeWritable(root);
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::remove(token, ec);
  }

  absl::StatusOr<HandlerOutput> Run(const std::string& mode, const nlohmann::json& payload, bool internet = false,
                                    const std::string& index = "") {
    PythonScriptOptions py;
    py.requirements = mode;
    py.cache_limit_bytes = cache_limit_bytes;
    py.index_url = index.empty() ? (root / "wheels").string() : index;
    auto handler = MakePythonScriptHandler(ExecutionOptions::FromConfig(config, *containment), py);
    if (!handler.ok()) return handler.status();
    StopToken stop(absl::Now() + absl::Seconds(120));
    return (*handler)->Run(TaskContext{NewId("task"), 1, payload.dump(), &stop, {}, nullptr, internet});
  }
};

bool NoBwrap(const Install& s) {
  if (s.containment.ok()) return false;
  WARN("SKIPPED: bwrap containment is unavailable here: " << s.containment.status().message());
  return true;
}

}  // namespace

TEST_CASE("bwrap: a local source package's setup.py runs inside the install sandbox and reaches nothing (repro 2)") {
  Install s;
  if (NoBwrap(s)) return;
  Listener listener;
  REQUIRE(listener.port() > 0);
  setenv("RC_WORKER_ONLY_CANARY", "worker-env-canary", 1);
  const std::string id = NewId("rc-setup-marker");
  const std::vector<std::string> markers = {
      "/var/tmp/" + id,                           // anywhere on the host
      (fs::current_path() / id).string(),         // the build tree
      (s.root / id).string(),                     // next to the data dir
      (s.root / "wheels" / id).string(),          // the package source
      (fs::path(s.config.data_dir) / id).string(),  // the data dir itself (hidden)
      "/tmp/" + id,                               // the host's /tmp (private inside)
  };
  // setup.py probes, then records what happened in the virtualenv being built (the one
  // place it may write), for the task to print.
  const fs::path pkg = s.root / "src" / "rcprobe";
  fs::create_directories(pkg);
  nlohmann::json marker_list = markers;
  std::ofstream(pkg / "setup.py") << "import json, os, socket, sys\n"
                                  << "markers = json.loads('" << marker_list.dump() << "')\n"
                                  << "out = []\n"
                                  << "for m in markers:\n"
                                  << "    try:\n"
                                  << "        open(m, 'w').write('x')\n"
                                  << "        out.append('wrote ' + m)\n"
                                  << "    except OSError as e:\n"
                                  << "        out.append('no write ' + m + ': ' + e.strerror)\n"
                                  << "for secret in ['" << s.config.data_dir << "/worker_key.pem', '"
                                  << s.token.string() << "']:\n"
                                  << "    try:\n"
                                  << "        out.append('read %r' % open(secret).read())\n"
                                  << "    except OSError as e:\n"
                                  << "        out.append('no read: ' + e.strerror)\n"
                                  << "try:\n"
                                  << "    socket.create_connection(('127.0.0.1', " << listener.port() << "), 2)\n"
                                  << "    out.append('connected')\n"
                                  << "except OSError as e:\n"
                                  << "    out.append('no network: ' + str(e))\n"
                                  << "out.append('env ' + ' '.join(sorted(os.environ)))\n"
                                  << "out.append('canary' if 'worker-env-canary' in repr(os.environ) else 'no canary')\n"
                                  << "venv = os.path.dirname(os.path.dirname(sys.executable))\n"
                                  << "open(os.path.join(venv, 'probe.txt'), 'a').write('\\n'.join(out) + '\\n')\n"
                                  << "open(os.path.join(venv, 'suid'), 'w').close()\n"
                                  << "os.chmod(os.path.join(venv, 'suid'), 0o6755)\n"
                                  << "from setuptools import setup\n"
                                  << "setup(name='rcprobe', version='1.0', py_modules=[])\n";
  const nlohmann::json payload = {
      {"code", "import sys\nprint(open(sys.prefix + '/probe.txt').read())\n"},
      {"requirements", {pkg.string(), "rcgreet"}}};
  auto out = s.Run("any", payload);
  unsetenv("RC_WORKER_ONLY_CANARY");
  INFO(out.status().message());
  REQUIRE(out.ok());
  INFO(out->stdout << out->stderr);
  CHECK(out->failure.ok());
  // setup.py ran (inside), and each attempt failed or landed inside the sandbox only.
  CHECK_THAT(out->stdout, Catch::Contains("no write /var/tmp/" + id + ": Read-only file system"));
  for (const std::string& m : markers) {
    INFO(m);
    CHECK(!fs::exists(m));
  }
  CHECK_THAT(out->stdout, !Catch::Contains("KEY-SECRET") && !Catch::Contains("TOKEN-SECRET"));
  // The key: the data dir is an empty tmpfs inside. The token: /dev/null bound over it,
  // read as empty or refused where the mount forbids devices.
  CHECK_THAT(out->stdout, Catch::Contains("no read: No such file or directory") &&
                              (Catch::Contains("read ''") || Catch::Contains("no read: Permission denied")));
  CHECK_THAT(out->stdout, Catch::Contains("no network") && !Catch::Contains("connected"));
  CHECK_THAT(out->stdout, Catch::Contains("no canary"));
  // A set-id program the build made keeps no set-id bit on the host.
  const fs::path suid = fs::path(s.config.data_dir) / "venvs" /
                        nlohmann::json::parse(out->result)["environment"].get<std::string>() / "suid";
  REQUIRE(fs::exists(suid));
  CHECK((fs::status(suid).permissions() & (fs::perms::set_uid | fs::perms::set_gid)) == fs::perms::none);
  for (const std::string& m : markers) {
    std::error_code ec;
    fs::remove(m, ec);
  }
}

TEST_CASE("bwrap: under names a wheel installs in the sandbox, a remote index under any needs internet_required") {
  Install s;
  if (NoBwrap(s)) return;
  auto out = s.Run("names", {{"code", "import rcgreet\nprint(rcgreet.greet('box'))\n"}, {"requirements", {"rcgreet"}}});
  REQUIRE(out.ok());
  INFO(out->stderr);
  CHECK(out->stdout == "hello box\n");

  // The index is never reached: the refusal comes first.
  auto refused = s.Run("any", {{"code", "print(1)"}, {"requirements", {"rcgreet"}}}, /*internet=*/false,
                       "http://127.0.0.1:9/simple");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("internet_required"));

  // A local path hidden from tasks is refused, not bound into the install sandbox.
  auto hidden = s.Run("any", {{"code", "print(1)"}, {"requirements", {s.config.data_dir + "/worker_key.pem"}}});
  REQUIRE_FALSE(hidden.ok());
  CHECK(hidden.status().code() == absl::StatusCode::kFailedPrecondition);  // this worker's refusal: retried
  CHECK_THAT(std::string(hidden.status().message()), Catch::Contains("hidden from tasks"));
  // So is anything under the host's /tmp (tasks see a private one; tokens may live there).
  const fs::path tmp_secret = fs::path("/tmp") / NewId("rc-install-test-secret");
  std::ofstream(tmp_secret) << "TMP-SECRET";
  auto in_tmp = s.Run("any", {{"code", "print(1)"}, {"requirements", {tmp_secret.string()}}});
  fs::remove(tmp_secret);
  REQUIRE_FALSE(in_tmp.ok());
  CHECK(in_tmp.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(in_tmp.status().message()), Catch::Contains("hidden from tasks"));
  // A path that is on no worker here: NOT_FOUND, retried elsewhere.
  auto absent = s.Run("any", {{"code", "print(1)"}, {"requirements", {(s.root / "absent-pkg").string()}}});
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("bwrap: symlinks a build plants in its environment redirect none of the worker's writes nor its size count") {
  Install s;
  if (NoBwrap(s)) return;
  // Host files the worker may write, outside the data dir: stand-ins for ~/.bashrc and a key.
  const fs::path bashrc = s.root / "victim-bashrc";
  const fs::path key = s.root / "victim-key";
  std::ofstream(bashrc) << "ORIGINAL-BASHRC";
  std::ofstream(key) << "ORIGINAL-KEY";
  // A sparse 64 GiB host file: counted through a symlink, the cache would be far over its limit.
  const fs::path huge = s.root / "huge";
  std::ofstream(huge).close();
  fs::resize_file(huge, uint64_t{1} << 36);
  s.cache_limit_bytes = uint64_t{1} << 30;

  auto first = s.Run("any", {{"code", "print(1)"}, {"requirements", {"rcgreet"}}});
  REQUIRE(first.ok());
  REQUIRE(first->failure.ok());
  const fs::path venvs = fs::path(s.config.data_dir) / "venvs";
  const fs::path first_env = venvs / nlohmann::json::parse(first->result)["environment"].get<std::string>();
  REQUIRE(fs::is_directory(first_env));

  // setup.py plants, in the environment being built, symlinks named like the markers the
  // worker writes once a build succeeds, and one to the huge file.
  const fs::path pkg = s.root / "src" / "rcplant";
  fs::create_directories(pkg);
  // (pip runs setup.py more than once.)
  std::ofstream(pkg / "setup.py") << "import os, sys\n"
                                  << "venv = os.path.dirname(os.path.dirname(sys.executable))\n"
                                  << "for target, name in [('" << bashrc.string() << "', '.requirements'), ('"
                                  << key.string() << "', '.ready'), ('" << huge.string() << "', 'huge')]:\n"
                                  << "    if not os.path.lexists(os.path.join(venv, name)):\n"
                                  << "        os.symlink(target, os.path.join(venv, name))\n"
                                  << "from setuptools import setup\n"
                                  << "setup(name='rcplant', version='1.0', py_modules=[])\n";
  auto second = s.Run("any", {{"code", "import os, sys\nprint(os.path.islink(sys.prefix + '/huge'))\n"},
                              {"requirements", {pkg.string()}}});
  INFO(second.status().message());
  REQUIRE(second.ok());
  INFO(second->stdout << second->stderr);
  CHECK(second->failure.ok());
  CHECK(second->stdout == "True\n");  // the symlinks were planted
  auto read = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  CHECK(read(bashrc) == "ORIGINAL-BASHRC");
  CHECK(read(key) == "ORIGINAL-KEY");
  // Counted without following the symlink, both environments fit the 1 GiB limit.
  CHECK(fs::is_directory(first_env));
}

}  // namespace rc::worker
