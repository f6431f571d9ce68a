#include "coordinator/store/wal_write_buffer.h"

#include <sqlite3.h>

#include <cstring>
#include <new>
#include <string>

namespace rc::coordinator {
namespace {

// A commit larger than this is written in several pieces. The unix VFS writes at most
// 128 KiB - 1 per call (it masks larger sizes), and one write of SQLite's is at most a
// 64 KiB page and its header: the buffer stays below 128 KiB.
constexpr size_t kMaxBuffered = 96 << 10;

// Our file object: SQLite allocates vfs.szOsFile bytes; the underlying VFS's file
// object follows ours in the same allocation.
struct File {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  std::string* pending;       // WAL only: bytes written but not yet passed on
  sqlite3_int64 pending_at;   // where pending starts in the file
};

sqlite3_vfs* Default() {
  static sqlite3_vfs* const vfs = sqlite3_vfs_find(nullptr);
  return vfs;
}

File* Of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

// Passes the gathered bytes on, with one write.
int Flush(File* f) {
  if (f->pending == nullptr || f->pending->empty()) return SQLITE_OK;
  const int rc = f->real->pMethods->xWrite(f->real, f->pending->data(), static_cast<int>(f->pending->size()),
                                           f->pending_at);
  f->pending->clear();
  return rc;
}

int Close(sqlite3_file* file) {
  File* f = Of(file);
  int rc = Flush(f);
  const int closed = f->real->pMethods != nullptr ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  delete f->pending;
  f->pending = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int Read(sqlite3_file* file, void* out, int n, sqlite3_int64 at) {
  File* f = Of(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xRead(f->real, out, n, at);
}

int Write(sqlite3_file* file, const void* in, int n, sqlite3_int64 at) {
  File* f = Of(file);
  if (f->pending == nullptr) return f->real->pMethods->xWrite(f->real, in, n, at);
  const bool follows = !f->pending->empty() && at == f->pending_at + static_cast<sqlite3_int64>(f->pending->size());
  if (!follows || f->pending->size() + static_cast<size_t>(n) > kMaxBuffered) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
    f->pending_at = at;
  }
  try {
    f->pending->append(static_cast<const char*>(in), static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    f->pending->clear();
    return SQLITE_IOERR_NOMEM;
  }
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = Of(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  File* f = Of(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xSync(f->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  File* f = Of(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileSize(f->real, size);
}

int Lock(sqlite3_file* file, int level) { return Of(file)->real->pMethods->xLock(Of(file)->real, level); }
int Unlock(sqlite3_file* file, int level) { return Of(file)->real->pMethods->xUnlock(Of(file)->real, level); }
int CheckReservedLock(sqlite3_file* file, int* out) {
  return Of(file)->real->pMethods->xCheckReservedLock(Of(file)->real, out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  File* f = Of(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int SectorSize(sqlite3_file* file) { return Of(file)->real->pMethods->xSectorSize(Of(file)->real); }
int DeviceCharacteristics(sqlite3_file* file) {
  return Of(file)->real->pMethods->xDeviceCharacteristics(Of(file)->real);
}

// The shared-memory and memory-map methods exist from versions 2 and 3 of the underlying
// methods (the unix VFS's are version 3); without them, what SQLite does without them.
bool Has(sqlite3_file* file, int version) { return Of(file)->real->pMethods->iVersion >= version; }

int ShmMap(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
  if (!Has(file, 2)) return SQLITE_IOERR_SHMMAP;
  return Of(file)->real->pMethods->xShmMap(Of(file)->real, page, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  if (!Has(file, 2)) return SQLITE_IOERR_SHMLOCK;
  return Of(file)->real->pMethods->xShmLock(Of(file)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) {
  if (Has(file, 2)) Of(file)->real->pMethods->xShmBarrier(Of(file)->real);
}
int ShmUnmap(sqlite3_file* file, int remove) {
  if (!Has(file, 2)) return SQLITE_OK;
  return Of(file)->real->pMethods->xShmUnmap(Of(file)->real, remove);
}

int Fetch(sqlite3_file* file, sqlite3_int64 at, int n, void** out) {
  File* f = Of(file);
  *out = nullptr;  // no mapping: SQLite reads instead
  if (!Has(file, 3)) return SQLITE_OK;
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFetch(f->real, at, n, out);
}
int Unfetch(sqlite3_file* file, sqlite3_int64 at, void* p) {
  if (!Has(file, 3)) return SQLITE_OK;
  return Of(file)->real->pMethods->xUnfetch(Of(file)->real, at, p);
}

// One table for every file: each method forwards to the file's own underlying methods
// (the unix VFS gives the database and its WAL different ones).
const sqlite3_io_methods kMethods = {
    3,          Close,   Read,   Write,      Truncate,          Sync,  FileSize, Lock, Unlock, CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap, Fetch, Unfetch};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = Of(file);
  f->base.pMethods = nullptr;  // until the real open succeeded: SQLite then skips xClose
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->pending = nullptr;
  f->pending_at = 0;
  sqlite3_vfs* inner = static_cast<sqlite3_vfs*>(vfs->pAppData);
  const int rc = inner->xOpen(inner, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) return rc;
  if ((flags & SQLITE_OPEN_WAL) != 0) f->pending = new (std::nothrow) std::string();
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// Everything else about files and the system is the default VFS's.
int Delete(sqlite3_vfs* v, const char* n, int sync) { return Default()->xDelete(Default(), n, sync); }
int Access(sqlite3_vfs* v, const char* n, int flags, int* out) { return Default()->xAccess(Default(), n, flags, out); }
int FullPathname(sqlite3_vfs* v, const char* n, int size, char* out) {
  return Default()->xFullPathname(Default(), n, size, out);
}
void* DlOpen(sqlite3_vfs* v, const char* n) { return Default()->xDlOpen(Default(), n); }
void DlError(sqlite3_vfs* v, int n, char* out) { Default()->xDlError(Default(), n, out); }
void (*DlSym(sqlite3_vfs* v, void* h, const char* s))(void) { return Default()->xDlSym(Default(), h, s); }
void DlClose(sqlite3_vfs* v, void* h) { Default()->xDlClose(Default(), h); }
int Randomness(sqlite3_vfs* v, int n, char* out) { return Default()->xRandomness(Default(), n, out); }
int Sleep(sqlite3_vfs* v, int us) { return Default()->xSleep(Default(), us); }
int CurrentTime(sqlite3_vfs* v, double* out) { return Default()->xCurrentTime(Default(), out); }
int GetLastError(sqlite3_vfs* v, int n, char* out) { return Default()->xGetLastError(Default(), n, out); }
int CurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) { return Default()->xCurrentTimeInt64(Default(), out); }

// A VFS over `inner`, named `name`; never freed (SQLite keeps registered VFSes).
sqlite3_vfs* Make(sqlite3_vfs* inner, const char* name) {
  if (inner == nullptr || inner->iVersion < 2) return nullptr;
  auto* vfs = new sqlite3_vfs{};
  vfs->iVersion = 2;
  vfs->szOsFile = static_cast<int>(sizeof(File)) + inner->szOsFile;
  vfs->mxPathname = inner->mxPathname;
  vfs->zName = name;
  vfs->pAppData = inner;
  vfs->xOpen = Open;
  vfs->xDelete = Delete;
  vfs->xAccess = Access;
  vfs->xFullPathname = FullPathname;
  vfs->xDlOpen = DlOpen;
  vfs->xDlError = DlError;
  vfs->xDlSym = DlSym;
  vfs->xDlClose = DlClose;
  vfs->xRandomness = Randomness;
  vfs->xSleep = Sleep;
  vfs->xCurrentTime = CurrentTime;
  vfs->xGetLastError = GetLastError;
  vfs->xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(vfs, /*makeDflt=*/0) == SQLITE_OK) return vfs;
  delete vfs;
  return nullptr;
}

}  // namespace

const char* WalWriteBufferVfs() {
  static sqlite3_vfs* const vfs = Make(Default(), "rc-wal-write-buffer");
  return vfs != nullptr ? vfs->zName : nullptr;
}

bool RegisterWalWriteBufferOver(sqlite3_vfs* inner, const char* name) { return Make(inner, name) != nullptr; }

}  // namespace rc::coordinator
