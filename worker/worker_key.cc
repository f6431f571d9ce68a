#include "worker/worker_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "spdlog/spdlog.h"

namespace rc::worker {
namespace {

absl::Status FromErrno(int err, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT: return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS: return absl::PermissionDeniedError(msg);
    default: return absl::InternalError(msg);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// NOT_FOUND when there is no file; the key otherwise, or why it cannot be used.
absl::StatusOr<Ed25519Key> Load(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return FromErrno(errno, path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return FromErrno(errno, path);
  if (!S_ISREG(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: permissions %04o are too open: the worker's private key must not be accessible by "
                        "group or others (chmod 600 %s)",
                        path, st.st_mode & 07777, path));
  }
  std::string pem;
  char buf[4096];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, path);
    }
    pem.append(buf, static_cast<size_t>(n));
    if (pem.size() > (64 << 10)) return absl::InvalidArgumentError(absl::StrCat(path, ": too large for a key"));
  }
  absl::StatusOr<Ed25519Key> key = Ed25519Key::FromPem(pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": does not hold an Ed25519 private key (", key.status().message(), ")"));
  }
  return key;
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, path);
    }
    done += static_cast<size_t>(n);
  }
  return fsync(fd) == 0 ? absl::OkStatus() : FromErrno(errno, path);
}

// Writes a new key beside `path` and links it into place. Returns false (and no error)
// when another process linked its key first.
absl::StatusOr<bool> Create(const std::string& dir, const std::string& path) {
  absl::StatusOr<Ed25519Key> key = Ed25519Key::Generate();
  if (!key.ok()) return key.status();
  const std::string pem = key->PrivatePem();
  if (pem.empty()) return absl::InternalError("OpenSSL could not encode the new worker key");
  const std::string tmp = absl::StrCat(path, ".", NewId("tmp"));
  Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return FromErrno(errno, tmp);
  absl::Status written = WriteAll(fd.get(), pem, tmp);
  if (written.ok() && close(fd.Release()) != 0) written = FromErrno(errno, tmp);
  // link(), unlike rename(), never replaces a key another process created meanwhile.
  const bool linked = written.ok() && link(tmp.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  unlink(tmp.c_str());
  if (!written.ok()) return written;
  if (!linked) {
    if (link_errno == EEXIST) return false;
    return FromErrno(link_errno, path);
  }
  Fd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) fsync(dir_fd.get());  // the new name survives a power cut
  return true;
}

}  // namespace

absl::StatusOr<Ed25519Key> LoadOrCreateWorkerKey(const std::string& data_dir) {
  const std::string path = (std::filesystem::path(data_dir) / kWorkerKeyFile).string();
  absl::StatusOr<Ed25519Key> key = Load(path);
  if (key.ok() || !absl::IsNotFound(key.status())) return key;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(data_dir, ": cannot create the data dir: ", ec.message()));
  absl::StatusOr<bool> created = Create(data_dir, path);
  if (!created.ok()) return created.status();
  if (*created) spdlog::info("created a new worker key in {}", path);
  return Load(path);
}

ResultSigner::ResultSigner(Ed25519Key key, std::string device_id, const Clock* clock)
    : key_(std::move(key)), device_id_(std::move(device_id)), clock_(clock) {}

ResultSigner::~ResultSigner() {
  if (batches() > 0) {
    spdlog::info("signed {} results in {} batches ({:.1f} per signature)", results(), batches(),
                 static_cast<double>(results()) / static_cast<double>(batches()));
  }
}

void ResultSigner::SignBatch(absl::Span<pb::TaskFinished* const> batch) {
  if (batch.empty()) return;
  const std::vector<const pb::TaskFinished*> in(batch.begin(), batch.end());
  absl::StatusOr<std::vector<pb::ResultSignature>> sigs = rc::SignBatch(key_, in, device_id_, clock_->NowMs());
  if (!sigs.ok()) {
    spdlog::error("{} results (task {} attempt {} first) sent unsigned: {}", batch.size(), batch[0]->task_id(),
                  batch[0]->attempt(), std::string(sigs.status().message()));
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) *batch[i]->mutable_signature() = std::move((*sigs)[i]);
  batches_.fetch_add(1, std::memory_order_relaxed);
  results_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
}

}  // namespace rc::worker
