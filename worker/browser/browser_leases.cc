// BrowserPool's leases (browser_pool.h): one task per profile at a time. A waiting Lease
// wakes when the holder releases, and polls its stop token every kLeasePoll on the pool's
// clock so that a cancel or deadline ends the wait promptly.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "worker/browser/browser_pool.h"
#include "worker/browser/browser_pool_state.h"

namespace rc::worker {
namespace {

constexpr absl::Duration kLeasePoll = absl::Milliseconds(100);

}  // namespace

ProfileLease::ProfileLease(ProfileLease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), profile_(std::move(other.profile_)) {}

ProfileLease& ProfileLease::operator=(ProfileLease&& other) noexcept {
  if (this != &other) {
    if (pool_ != nullptr) pool_->Release(profile_);
    pool_ = std::exchange(other.pool_, nullptr);
    profile_ = std::move(other.profile_);
  }
  return *this;
}

ProfileLease::~ProfileLease() {
  if (pool_ != nullptr) pool_->Release(profile_);
}

absl::StatusOr<ProfileLease> BrowserPool::Lease(const std::string& profile, const std::string& task_id,
                                                const StopToken& stop) {
  if (absl::Status st = CheckProfileName(profile, "profile"); !st.ok()) return st;
  State& s = *state_;
  const Clock& clock = *options_.clock;
  std::string logged_holder;
  absl::MutexLock lock(&s.mu);
  while (true) {
    if (s.shutdown) return absl::UnavailableError("the worker is stopping its browsers");
    State::Profile& p = s.profiles[profile];
    if (p.holder.empty()) {
      p.holder = task_id;
      p.session = false;
      break;
    }
    const std::string holder = p.holder;
    if (stop.stopped()) {
      return absl::CancelledError(absl::StrCat("stopped while waiting for browser profile '", profile,
                                               "', which task ", holder, " holds"));
    }
    if (holder != logged_holder) {
      logged_holder = holder;
      s.mu.Unlock();  // no logging under the lock
      spdlog::info("task {} waits for browser profile {}, held by task {}", task_id, profile, holder);
      s.mu.Lock();
      continue;
    }
    auto vacant = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return p.holder.empty() || s.shutdown; };
    clock.AwaitWithDeadline(&s.mu, absl::Condition(&vacant), clock.Now() + kLeasePoll);
  }
  return ProfileLease(this, profile);
}

void BrowserPool::Release(const std::string& profile) {
  absl::MutexLock lock(&state_->mu);
  State::Profile& p = state_->profiles[profile];
  p.holder.clear();
  p.session = false;
}

std::optional<std::string> BrowserPool::Holder(const std::string& profile) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->profiles.find(profile);
  if (it == state_->profiles.end() || it->second.holder.empty()) return std::nullopt;
  return it->second.holder;
}

absl::StatusOr<std::string> BrowserPool::ProfileDirForSession(const std::string& profile) {
  if (absl::Status st = CheckProfileName(profile, "profile"); !st.ok()) return st;
  {
    absl::MutexLock lock(&state_->mu);
    State::Profile& p = state_->profiles[profile];
    state_->ReapLocked(p);
    if (p.starting || (p.browser != nullptr && !p.browser->exited)) {
      return absl::FailedPreconditionError(
          absl::StrCat("browser profile '", profile, "' has its persistent browser running (pid ",
                       p.browser != nullptr ? p.browser->pid : 0,
                       "); two Chromiums cannot share one profile: stop it first (a `browser` task, operation stop)"));
    }
    // Until the holder's lease ends, Start refuses this profile (see Start).
    if (!p.holder.empty()) p.session = true;
  }
  const std::string dir = absl::StrCat(options_.profiles_dir, "/", profile);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || chmod(dir.c_str(), 0700) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot make the profile dir ", dir, ": ", ec ? ec.message() : std::strerror(errno)));
  }
  // A port file left by an earlier browser would mislead whoever reads it next.
  std::filesystem::remove(absl::StrCat(dir, "/DevToolsActivePort"), ec);
  return dir;
}

}  // namespace rc::worker
