#include "worker/handlers/venv_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "worker/handlers/task_env.h"

namespace rc::worker {
namespace {

namespace fs = std::filesystem;

// How often a task waiting for another task's build checks its own cancel/deadline.
constexpr absl::Duration kLockPoll = absl::Milliseconds(20);

// Never follows a symlink: a sandboxed build can plant one to a huge host file to make
// its environment look big and the cache evict the others.
uint64_t DirectorySize(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (fs::is_regular_file(it->symlink_status(size_ec))) {
      const uintmax_t size = fs::file_size(it->path(), size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

// An environment's markers live beside its directory under the cache root, never in
// it: the install sandbox can write anything into the directory (a symlink named like
// a marker to a host file), and the worker writes its markers outside any sandbox.
fs::path Marker(const std::string& root, const std::string& key, absl::string_view what) {
  return fs::path(root) / absl::StrCat(key, what);
}

// Built and not (being) evicted: its .ready marker exists and the directory is a real one.
bool Ready(const std::string& root, const std::string& key) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(Marker(root, key, ".ready"), ec)) &&
         fs::is_directory(fs::symlink_status(fs::path(root) / key, ec));
}

// Holds an exclusive flock on `path` (created) while alive.
class FileLock {
 public:
  // Waits for the lock; with `stop`, gives up (held() false) once it stops.
  explicit FileLock(const std::string& path, const StopToken* stop = nullptr)
      : fd_(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600)) {
    if (fd_ < 0) return;
    if (stop == nullptr) {
      held_ = flock(fd_, LOCK_EX) == 0;
      return;
    }
    while (!(held_ = flock(fd_, LOCK_EX | LOCK_NB) == 0) && !stop->stopped()) absl::SleepFor(kLockPoll);
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);
  }
  bool held() const { return held_ || fd_ < 0; }

 private:
  int fd_;
  bool held_ = false;
};

// Removes `dir` even where its directories were made read-only (by VenvCache, or by a
// sandboxed build), never following a symlink: an install sandbox could have planted
// one to a host directory.
void RemoveTree(const fs::path& dir) {
  std::error_code ec;
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add | fs::perm_options::nofollow, ec);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_symlink(ec) && it->is_directory(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
  }
  fs::remove_all(dir, ec);
}

void Touch(const fs::path& file) {
  std::ofstream(file, std::ios::trunc) << absl::ToUnixSeconds(absl::Now());
}

}  // namespace

std::string PipError(const std::string& output) {
  static const std::regex kNoDist(R"(No matching distribution found for ([^\s]+))");
  static const std::regex kNoVersion(R"(Could not find a version that satisfies the requirement ([^\s]+))");
  std::smatch m;
  if (std::regex_search(output, m, kNoDist) || std::regex_search(output, m, kNoVersion)) {
    return absl::StrCat("pip could not install '", m[1].str(), "': ", m[0].str());
  }
  // pip's own last ERROR line; else the first "error:" of a build's output (setup.py's
  // own complaint), which pip's summary lines only point to.
  std::string last, build;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(l, "ERROR:")) last = std::string(absl::StripAsciiWhitespace(l.substr(6)));
    if (build.empty() && absl::StartsWithIgnoreCase(l, "error:")) build = std::string(l.substr(0, 300));
  }
  return absl::StrCat("pip install failed: ", !last.empty() ? last : !build.empty() ? build : "see stderr");
}

VenvCache::VenvCache(std::string root, std::string python, uint64_t limit_bytes, std::string requirements_mode,
                     PackageSource source, ExecutionOptions options)
    : root_(std::move(root)),
      python_(std::move(python)),
      limit_bytes_(limit_bytes),
      requirements_mode_(std::move(requirements_mode)),
      source_(std::move(source)),
      options_(std::move(options)) {
  StopToken stop(absl::Now() + absl::Seconds(20));
  ProcessSpec spec;
  spec.argv = {python_, "-I", "-c", "import sys; print(sys.version)"};
  spec.env = HostEnvironment("/");
  absl::StatusOr<ProcessResult> r = RunProcess(spec, stop);
  python_version_ = r.ok() ? std::string(absl::StripAsciiWhitespace(r->stdout)) : "unknown";
  // What else decides an environment's content: the same names from another source or
  // under another policy are another environment.
  absl::StrAppend(&python_version_, "\n", requirements_mode_, "\n", absl::StrJoin(source_.pip_args, " "));
}

std::vector<std::string> VenvCache::Normalize(const std::vector<std::string>& requirements) {
  static const std::regex kSeparators("[-_.]+");
  std::vector<std::string> out;
  for (const std::string& raw : requirements) {
    std::string r(absl::StripAsciiWhitespace(raw));
    if (r.empty()) continue;
    size_t name_end = r.find_first_of("<>=!~;[ @");
    std::string name = absl::AsciiStrToLower(r.substr(0, name_end));
    name = std::regex_replace(name, kSeparators, "-");
    out.push_back(name + (name_end == std::string::npos ? "" : r.substr(name_end)));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string VenvCache::Key(const std::string& python_version, const std::vector<std::string>& normalized) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across builds and runs
  for (char c : absl::StrCat(python_version, "\n", absl::StrJoin(normalized, "\n"))) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return absl::StrFormat("%016x", h);
}

absl::Mutex* VenvCache::KeyMutex(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto& m = key_mu_[key];
  if (m == nullptr) m = std::make_unique<absl::Mutex>();
  return m.get();
}

absl::StatusOr<VenvCache::InstallPlan> VenvCache::PlanInstall(const std::vector<std::string>& requirements,
                                                               bool internet_required) const {
  InstallPlan plan;
  for (const std::string& r : requirements) {
    RETURN_IF_ERROR(CheckRequirement(r, requirements_mode_));
    const std::string path = LocalRequirementPath(r);
    if (path.empty()) continue;
    std::error_code ec;
    // Both depend on this worker (its files, its containment), not on the payload alone:
    // retried, possibly elsewhere, rather than a permanent refusal (handler.h).
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat("payload.requirements: '", r, "': no such file on this worker"));
    }
    if (options_.containment != nullptr && options_.containment->WouldExpose(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat("payload.requirements: '", r, "' is (or holds) a path hidden from tasks on this worker"));
    }
    plan.read_only.push_back(path);
  }
  if (!source_.local_dir.empty()) plan.read_only.push_back(source_.local_dir);
  if (options_.containment != nullptr && options_.containment->tier() == "bwrap" && !requirements.empty()) {
    ASSIGN_OR_RETURN(plan.network, InstallNetwork(source_, requirements_mode_, internet_required));
  }
  return plan;
}

absl::StatusOr<VenvCache::Lease> VenvCache::Acquire(const std::vector<std::string>& requirements, bool keep_alive,
                                                   const TaskContext& ctx, bool* created) {
  ASSIGN_OR_RETURN(InstallPlan plan, PlanInstall(requirements, ctx.internet_required));
  const std::vector<std::string> normalized = Normalize(requirements);  // the key only
  const std::string key = Key(python_version_, normalized);
  if (created != nullptr) *created = false;
  // Another task may be building this environment: wait, but not past our own stop.
  absl::Mutex* key_mu = KeyMutex(key);
  while (!key_mu->TryLock()) {
    if (ctx.stop->stopped()) return absl::AbortedError("stopped while another task was building the environment");
    absl::SleepFor(kLockPoll);
  }
  absl::StatusOr<Lease> lease = AcquireKeyLocked(key, key_mu, requirements, keep_alive, plan, *ctx.stop, created);
  key_mu->Unlock();
  if (lease.ok()) Evict();
  return lease;
}

absl::StatusOr<VenvCache::Lease> VenvCache::AcquireKeyLocked(const std::string& key, absl::Mutex* key_mu,
                                                            const std::vector<std::string>& requirements,
                                                            bool keep_alive, const InstallPlan& plan,
                                                            const StopToken& stop, bool* created) {
  const fs::path dir = fs::path(root_) / key;
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create venv cache ", root_, ": ", ec.message()));
  FileLock lock((fs::path(root_) / (key + ".lock")).string(), &stop);
  if (!lock.held()) return absl::AbortedError("stopped while another process was building the environment");
  if (!Ready(root_, key)) {
    RETURN_IF_ERROR(Build(key, requirements, plan, stop));
    if (created != nullptr) *created = true;
  }
  Touch(Marker(root_, key, ".last_used"));
  if (keep_alive) Touch(Marker(root_, key, ".keep_alive"));
  absl::MutexLock lock2(&mu_);
  ++in_use_[key];
  return Lease(this, key, dir.string());
}

namespace {

// pip builds a local directory in place, and the sandbox binds it read-only: each one
// is copied (inside the sandbox, by cp, so that the worker itself never walks a tree a
// task named) into the scratch directory, and the requirement rewritten to the copy.
template <typename Run>
absl::StatusOr<std::vector<std::string>> CopyLocalDirectories(const std::vector<std::string>& requirements,
                                                              const fs::path& scratch, const Run& run) {
  std::vector<std::string> out;
  for (const std::string& r : requirements) {
    const std::string path = LocalRequirementPath(r);
    std::error_code ec;
    if (path.empty() || !fs::is_directory(path, ec)) {
      out.push_back(r);
      continue;
    }
    const std::string copy = (scratch / absl::StrCat("src-", out.size())).string();
    absl::StatusOr<ProcessResult> cp = run({"/bin/cp", "-a", "--", path, copy}, false);
    if (!cp.ok()) return cp.status();
    if (cp->exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat("payload.requirements: '", r, "': cannot copy ", path,
                                                        ": ", absl::StripAsciiWhitespace(cp->stderr)));
    }
    std::string rewritten = r;
    rewritten.replace(rewritten.find(path), path.size(), copy);
    out.push_back(std::move(rewritten));
  }
  return out;
}

}  // namespace

absl::Status VenvCache::Build(const std::string& key, const std::vector<std::string>& requirements,
                              const InstallPlan& plan, const StopToken& stop) {
  // Built in place (scripts in bin/ record their path), under the key's locks; it is
  // used only once KEY.ready exists, so a crash mid-build leaves nothing usable: the
  // leftover is removed here first.
  const fs::path dir = fs::path(root_) / key;
  const fs::path scratch = fs::path(root_) / absl::StrCat(".build-", key, "-", NewId("b"));
  std::error_code ec;
  fs::remove(Marker(root_, key, ".ready"), ec);
  RemoveTree(dir);
  // Scratch directories of this key's builds that a crash left behind.
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    if (absl::StartsWith(entry.path().filename().string(), absl::StrCat(".build-", key, "-"))) RemoveTree(entry.path());
  }
  // The sandbox binds both, so both exist before it starts.
  fs::create_directories(dir, ec);
  if (!ec) fs::create_directories(scratch, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  struct RemoveScratch {
    fs::path path;
    ~RemoveScratch() { RemoveTree(path); }
  } remove_scratch{scratch};
  const SandboxPaths paths{scratch.string(), plan.read_only, {dir.string()}};
  auto run = [&](std::vector<std::string> argv, bool network) -> absl::StatusOr<ProcessResult> {
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = TaskEnvironment(options_, scratch.string());
    spec.cwd = scratch.string();
    spec.limits.address_space_bytes = 0;
    spec.limits.file_size_bytes = 0;
    spec.output_cap = 4 << 20;  // pip's last lines say what failed
    return RunInSandbox(std::move(spec), paths, network, absl::StrCat("venv-", key), stop, nullptr, options_);
  };
  auto fail = [&](absl::Status s) {
    RemoveTree(dir);
    return s;
  };
  spdlog::info("python_script: building virtualenv {} for [{}]{}", key, absl::StrJoin(requirements, ", "),
               plan.network ? " (install with network)" : "");
  absl::StatusOr<ProcessResult> venv = run({python_, "-m", "venv", dir.string()}, false);
  if (!venv.ok() || venv->exit_code != 0) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "cannot create a virtualenv with ", python_, " (is python3-venv installed?): ",
        venv.ok() ? absl::StripAsciiWhitespace(venv->stderr) : venv.status().message())));
  }
  if (!requirements.empty()) {
    std::vector<std::string> pip = {(dir / "bin" / "python").string(), "-m", "pip", "install", "--quiet"};
    for (const std::string& o : PipInstallOptions(source_, requirements_mode_)) pip.push_back(o);
    // "--" ends pip's options: a requirement can never be read as one.
    pip.push_back("--");
    ASSIGN_OR_RETURN(std::vector<std::string> local, CopyLocalDirectories(requirements, scratch, run));
    pip.insert(pip.end(), local.begin(), local.end());
    absl::StatusOr<ProcessResult> installed = run(pip, plan.network);
    if (!installed.ok()) return fail(installed.status());
    if (installed->stopped) return fail(absl::AbortedError("stopped while installing requirements"));
    if (installed->exit_code != 0 || installed->signal != 0) {
      std::string why = PipError(installed->stdout + "\n" + installed->stderr);
      if (installed->signal != 0) absl::StrAppend(&why, " (pip killed by signal ", installed->signal, ")");
      // Not INVALID_ARGUMENT (permanent, handler.h): pip reports an unreachable index as
      // "no matching distribution" too, so the attempt is retried.
      return fail(absl::FailedPreconditionError(why));
    }
  }
  // Read-only from here on: a task cannot change what later tasks with the same
  // requirements run (for a worker not running as root; see README). No set-id bits
  // either: a sandboxed build owns these files, and a worker running as root would
  // otherwise keep a set-uid-root program it made.
  const fs::perms drop = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write |
                         fs::perms::set_uid | fs::perms::set_gid;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_symlink(ec)) fs::permissions(it->path(), drop, fs::perm_options::remove, ec);
  }
  // Beside the directory (Marker), last: only a complete environment is ever used.
  std::ofstream(Marker(root_, key, ".requirements"), std::ios::trunc) << absl::StrJoin(requirements, "\n") << "\n";
  Touch(Marker(root_, key, ".ready"));
  return absl::OkStatus();
}

void VenvCache::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (--in_use_[key] <= 0) in_use_.erase(key);
}

VenvCache::Lease::~Lease() {
  if (cache_ != nullptr) cache_->Release(key_);
}

void VenvCache::Evict() {
  if (limit_bytes_ == 0) return;
  struct Env {
    fs::path dir;
    int64_t last_used;
    uint64_t size;
  };
  std::vector<Env> envs;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const std::string key = entry.path().filename().string();
    if (!entry.is_directory(ec) || !Ready(root_, key)) continue;
    std::ifstream f(Marker(root_, key, ".last_used"));
    int64_t t = 0;
    f >> t;
    Env e{entry.path(), t, DirectorySize(entry.path())};
    total += e.size;
    envs.push_back(std::move(e));
  }
  std::sort(envs.begin(), envs.end(), [](const Env& a, const Env& b) { return a.last_used < b.last_used; });
  for (const Env& e : envs) {
    if (total <= limit_bytes_) break;
    const std::string key = e.dir.filename().string();
    if (fs::exists(Marker(root_, key, ".keep_alive"))) continue;
    absl::MutexLock key_lock(KeyMutex(key));  // no Acquire of this key can be in between
    {
      absl::MutexLock lock(&mu_);
      if (in_use_.contains(key)) continue;
    }
    FileLock lock((fs::path(root_) / (key + ".lock")).string());
    // Renamed first, so that a crash mid-delete never leaves a half environment behind
    // under its key.
    const fs::path trash = fs::path(root_) / absl::StrCat(".trash-", key, "-", NewId("t"));
    fs::remove(Marker(root_, key, ".ready"), ec);  // first: never ready without its directory
    fs::rename(e.dir, trash, ec);
    if (ec) continue;
    RemoveTree(trash);
    fs::remove(Marker(root_, key, ".requirements"), ec);
    total -= e.size;
    spdlog::info("python_script: evicted virtualenv {} ({} MB) to stay under the cache limit", key, e.size >> 20);
  }
}

}  // namespace rc::worker
