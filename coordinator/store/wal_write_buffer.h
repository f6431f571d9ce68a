#pragma once
// A SQLite VFS over the default one that writes a commit's WAL frames with one write.
// SQLite writes each frame of the write-ahead log as two writes (a 24-byte header, then
// the page) and syncs the log once per commit (synchronous=FULL): a commit of four pages
// is eight pwrite calls and one fdatasync. On the machines we measure, a system call costs
// several microseconds, so the WAL file's writes are gathered in memory while they are
// contiguous and written as one pwrite before anything that needs them in the file: the
// sync, a read, a truncate, a size query, a file control, the close. Durability is the
// same: nothing is synced that was not written first, and a commit is only complete once
// synced. Other files (the database, temp files) go straight through.
//
// Design assumption: one connection uses the database (locking_mode=EXCLUSIVE), so no
// other file handle reads the WAL while frames sit in the buffer.

struct sqlite3_vfs;

namespace rc::coordinator {

// Registers the VFS once (thread-safe) and returns its name for sqlite3_open_v2, or
// nullptr when it could not be registered (callers then use the default VFS).
const char* WalWriteBufferVfs();

// The same over `inner` instead of the default VFS, registered as `name` (tests count what
// reaches the VFS below). Returns false when it could not be registered. Each call
// registers one more VFS for the life of the process.
bool RegisterWalWriteBufferOver(sqlite3_vfs* inner, const char* name);

}  // namespace rc::coordinator
