// The WAL write buffer (issue 18): a database written through it, with commits of many
// frames, checkpoints and reads in between, holds exactly what was committed when opened
// again through the default VFS; and what a commit wrote is in the WAL file once it returns.
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "coordinator/store/wal_write_buffer.h"

namespace rc::coordinator {
namespace {

namespace fs = std::filesystem;

struct Db {
  explicit Db(const std::string& path, const char* vfs) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) == SQLITE_OK);
  }
  ~Db() { sqlite3_close(db); }
  void Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << ": " << (error != nullptr ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  }
  sqlite3* db = nullptr;
};

// A database through the write buffer, in WAL mode with a sync per commit, with table t.
void CreateThroughBuffer(Db& d) {
  d.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  d.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);");
}

// A VFS that is the default one, except that it counts the writes and syncs of WAL files:
// what reaches the VFS below the write buffer. Each file it opens gets a copy of its real
// method table with xWrite, xSync and xClose counting (or forgetting) first.
struct Counted {
  const sqlite3_io_methods* real;
  bool wal;
};
std::map<sqlite3_file*, Counted>& Files() {
  static std::map<sqlite3_file*, Counted> files;  // this test's files only, one thread
  return files;
}
int wal_writes = 0, wal_syncs = 0;

int CountedWrite(sqlite3_file* f, const void* in, int n, sqlite3_int64 at) {
  const Counted& c = Files().at(f);
  if (c.wal) ++wal_writes;
  return c.real->xWrite(f, in, n, at);
}
int CountedSync(sqlite3_file* f, int flags) {
  const Counted& c = Files().at(f);
  if (c.wal) ++wal_syncs;
  return c.real->xSync(f, flags);
}
int CountedClose(sqlite3_file* f) {
  const sqlite3_io_methods* real = Files().at(f).real;
  Files().erase(f);
  return real->xClose(f);
}
int CountedOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* inner = sqlite3_vfs_find(nullptr);
  const int rc = inner->xOpen(inner, name, file, flags, out_flags);
  if (rc != SQLITE_OK || file->pMethods == nullptr) return rc;
  static std::map<const sqlite3_io_methods*, sqlite3_io_methods> tables;  // one copy per real table
  auto [it, added] = tables.try_emplace(file->pMethods, *file->pMethods);
  if (added) {
    it->second.xWrite = CountedWrite;
    it->second.xSync = CountedSync;
    it->second.xClose = CountedClose;
  }
  Files()[file] = Counted{file->pMethods, (flags & SQLITE_OPEN_WAL) != 0};
  file->pMethods = &it->second;
  return SQLITE_OK;
}
// Registers "rc-test-counting" (the counter) and "rc-test-buffer-over-counting" once.
void RegisterCounting() {
  static const bool registered = [] {
    static sqlite3_vfs counting = *sqlite3_vfs_find(nullptr);
    counting.zName = "rc-test-counting";
    counting.pNext = nullptr;
    counting.xOpen = CountedOpen;
    return sqlite3_vfs_register(&counting, 0) == SQLITE_OK &&
           RegisterWalWriteBufferOver(&counting, "rc-test-buffer-over-counting");
  }();
  REQUIRE(registered);
}

fs::path TempDir() {
  fs::path dir = fs::temp_directory_path() / absl::StrCat("rc-walbuf-", ::getpid(), "-", rand());
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("WAL write buffer: what is committed through it is all there when opened again") {
  const char* vfs = WalWriteBufferVfs();
  REQUIRE(vfs != nullptr);
  CHECK(WalWriteBufferVfs() == vfs);  // registered once
  const fs::path dir = TempDir();
  const std::string path = (dir / "t.db").string();
  int64_t bytes = 0;  // of every row committed
  {
    Db d(path, vfs);
    d.Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=8;");
    d.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL); CREATE INDEX t_v ON t(v);");
    for (int c = 0; c < 60; ++c) {
      std::string sql = "BEGIN;";
      for (int i = 0; i < 5; ++i) {  // rows of 3 KiB: each commit writes several frames
        const int k = c * 5 + i;
        absl::StrAppend(&sql, "INSERT INTO t VALUES (", k, ", randomblob(", 3000 + k % 2, "));");
        bytes += 3000 + k % 2;
      }
      if (c % 7 == 3) {
        absl::StrAppend(&sql, "DELETE FROM t WHERE k = ", c * 5 - 3, ";");
        bytes -= 3000 + (c * 5 - 3) % 2;
      }
      absl::StrAppend(&sql, "COMMIT;");
      d.Exec(sql);
      // Reads see every commit (a small cache: pages come back from the WAL file).
      CHECK(d.Int("SELECT count(*) FROM t") == (c + 1) * 5 - (c >= 3 ? (c - 3) / 7 + 1 : 0));
      if (c == 20) d.Exec("PRAGMA wal_checkpoint(PASSIVE);");
      if (c == 40) d.Exec("PRAGMA wal_checkpoint(TRUNCATE);");
    }
    CHECK(d.Int("PRAGMA integrity_check = 1") == 0);  // "ok" reads as 0
    CHECK(fs::file_size(path + "-wal") > 0);         // committed frames are in the file, not only in memory
  }
  Db again(path, nullptr);  // the default VFS
  CHECK(again.Int("SELECT count(*) FROM t") == 300 - 9);
  CHECK(again.Int("SELECT sum(length(v)) FROM t") == bytes);
  CHECK(again.Int("SELECT count(*) FROM t WHERE k = 297") == 1);
  fs::remove_all(dir);
}

TEST_CASE("WAL write buffer: one commit of several MiB is written whole") {
  const char* vfs = WalWriteBufferVfs();
  REQUIRE(vfs != nullptr);
  const fs::path dir = TempDir();
  const std::string path = (dir / "big.db").string();
  {
    Db d(path, vfs);
    CreateThroughBuffer(d);
    d.Exec("WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 2000) "
           "INSERT INTO t SELECT k, randomblob(2500) FROM n;");  // about 5 MiB of frames
  }
  Db again(path, nullptr);
  CHECK(again.Int("SELECT count(*) FROM t") == 2000);
  CHECK(again.Int("SELECT sum(length(v)) FROM t") == 2000 * 2500);
  fs::remove_all(dir);
}

TEST_CASE("WAL write buffer: a crash after a commit loses nothing it committed") {
  const char* vfs = WalWriteBufferVfs();
  REQUIRE(vfs != nullptr);
  const fs::path dir = TempDir();
  const std::string path = (dir / "t.db").string();
  {
    Db d(path, vfs);
    CreateThroughBuffer(d);
    for (int k = 0; k < 20; ++k) d.Exec(absl::StrCat("INSERT INTO t VALUES (", k, ", randomblob(5000));"));
    // As if the process died now: copy the files as they are on disk, before any close.
    fs::copy_file(path, (dir / "copy.db").string());
    fs::copy_file(path + "-wal", (dir / "copy.db-wal").string());
  }
  Db copy((dir / "copy.db").string(), nullptr);
  CHECK(copy.Int("SELECT count(*) FROM t") == 20);
  fs::remove_all(dir);
}

// What the buffer is for: SQLite writes each WAL frame as two writes (header, then page);
// through the buffer a commit reaches the file as one write before its sync.
TEST_CASE("WAL write buffer: each commit reaches the WAL file as one write before its sync") {
  RegisterCounting();
  const fs::path dir = TempDir();
  auto commits = [&](const char* vfs, const std::string& name) {
    Db d((dir / name).string(), vfs);
    d.Exec("PRAGMA locking_mode=EXCLUSIVE;");
    CreateThroughBuffer(d);
    wal_writes = wal_syncs = 0;
    for (int c = 0; c < 10; ++c) {  // 4 rows of 3 KiB: several frames per commit
      d.Exec(absl::StrCat("BEGIN; INSERT INTO t VALUES (", 4 * c, ", randomblob(3000)), (", 4 * c + 1,
                          ", randomblob(3000)), (", 4 * c + 2, ", randomblob(3000)), (", 4 * c + 3,
                          ", randomblob(3000)); COMMIT;"));
    }
    CHECK(d.Int("SELECT count(*) FROM t") == 40);
    return std::make_pair(wal_writes, wal_syncs);
  };
  const auto [direct_writes, direct_syncs] = commits("rc-test-counting", "direct.db");
  const auto [buffered_writes, buffered_syncs] = commits("rc-test-buffer-over-counting", "buffered.db");
  INFO("direct " << direct_writes << " writes, " << direct_syncs << " syncs; buffered " << buffered_writes
                 << " writes, " << buffered_syncs << " syncs");
  CHECK(direct_syncs == 10);
  CHECK(buffered_syncs == 10);
  CHECK(direct_writes >= 10 * 2 * 4);  // two writes per frame, at least 4 frames per commit
  CHECK(buffered_writes == 10);        // one per commit
  fs::remove_all(dir);
}

}  // namespace rc::coordinator
