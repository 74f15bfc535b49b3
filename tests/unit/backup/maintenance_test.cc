// Damage detection, crash leftovers, gc safety and export/import.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backup/repository.h"
#include "test_util.h"

namespace vireo::backup {
namespace {

namespace fs = std::filesystem;
using testing::CountFiles;
using testing::RandomChunk;
using testing::ReadDisk;
using testing::TempDir;
using testing::TestKey;
using testing::WriteBackup;

std::vector<std::string> ChunkFiles(const std::string& store) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(store + "/chunks"))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

void FlipByte(const std::string& path, off_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.read(&c, 1);
  c ^= 0x55;
  f.seekp(offset);
  f.write(&c, 1);
}

class BackupMaintenance : public ::testing::TestWithParam<bool> {
 protected:
  std::optional<Key> key() const {
    return GetParam() ? std::optional<Key>(TestKey()) : std::nullopt;
  }
  std::unique_ptr<Repository> Create() {
    auto r = CreateRepository(store(), key());
    EXPECT_TRUE(r) << r.error().ToString();
    return std::move(*r);
  }
  std::string store() const { return tmp_.path() + "/store"; }
  TempDir tmp_;
};

TEST_P(BackupMaintenance, VerifyNamesBackupsWithDamagedChunks) {
  auto repo = Create();
  auto shared = RandomChunk(1), only_b = RandomChunk(2);
  auto a = WriteBackup(*repo, "vm-a", {shared});
  auto files_before = ChunkFiles(store());
  auto b = WriteBackup(*repo, "vm-b", {shared, only_b});
  auto c = WriteBackup(*repo, "vm-c", {RandomChunk(3)});
  auto clean = repo->Verify();
  ASSERT_TRUE(clean);
  EXPECT_TRUE(clean->damaged.empty());
  EXPECT_EQ(clean->chunks_checked, 3u);  // the shared chunk is read once

  // Find b's own chunk (named by a possibly keyed hash the test does not
  // know): flip each new file until verify names exactly b.
  auto files_after = ChunkFiles(store());
  std::string victim;
  for (auto& f : files_after) {
    if (std::find(files_before.begin(), files_before.end(), f) !=
        files_before.end())
      continue;
    FlipByte(f, 40);
    auto r = repo->Verify();
    ASSERT_TRUE(r);
    if (r->damaged == std::vector<std::string>{b.id}) {
      victim = f;
      break;
    }
    FlipByte(f, 40);  // undo
  }
  auto report = repo->Verify();
  ASSERT_TRUE(report);
  ASSERT_EQ(report->damaged, std::vector<std::string>{b.id});
  for (const auto& s : report->backups) {
    if (s.id == b.id) {
      EXPECT_EQ(s.instance, "vm-b");
      ASSERT_FALSE(s.errors.empty());
      EXPECT_NE(s.errors[0].find(fs::path(victim).filename().string()),
                std::string::npos);
    }
  }
  // Reading the damaged chunk fails with kDataLoss naming it.
  auto reader = repo->OpenDisk(b.id, "root");
  ASSERT_TRUE(reader);
  std::vector<uint8_t> out;
  auto bad = (*reader)->ReadChunk(1, &out);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(bad.error().message().find(fs::path(victim).filename().string()),
            std::string::npos);
  // Other backups still read.
  EXPECT_EQ(ReadDisk(*repo, a.id)[0], shared);
  EXPECT_EQ(ReadDisk(*repo, c.id)[0], RandomChunk(3));

  // Truncation and removal are caught too.
  fs::resize_file(victim, 20);
  EXPECT_EQ(repo->Verify()->damaged, std::vector<std::string>{b.id});
  fs::remove(victim);
  auto gone = repo->Verify();
  EXPECT_EQ(gone->damaged, std::vector<std::string>{b.id});
  for (const auto& s : gone->backups)
    if (s.id == b.id) {
      ASSERT_FALSE(s.errors.empty());
      EXPECT_NE(s.errors[0].find("missing"), std::string::npos);
    }
}

TEST_P(BackupMaintenance, DamagedManifestIsReportedAndStopsGc) {
  auto repo = Create();
  auto a = WriteBackup(*repo, "vm1", {RandomChunk(1)});
  auto b = WriteBackup(*repo, "vm1", {RandomChunk(2)});
  std::string manifest = store() + "/backups/" + a.id + ".json";
  FlipByte(manifest, static_cast<off_t>(fs::file_size(manifest) / 2));
  auto report = repo->Verify();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->damaged, std::vector<std::string>{a.id});
  // List still shows the intact backup.
  auto list = repo->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, b.id);
  EXPECT_EQ(repo->Get(a.id).error().code(), ErrorCode::kDataLoss);
  // gc refuses to guess what the damaged manifest referenced.
  EXPECT_FALSE(repo->Gc());
  ASSERT_TRUE(repo->Delete(a.id));
  auto gc = repo->Gc();
  ASSERT_TRUE(gc) << gc.error().ToString();
  EXPECT_EQ(gc->removed_chunks, 1u);
}

TEST_P(BackupMaintenance, AbandonedWriterLeavesBackupsIntactAndGcCleans) {
  auto repo = Create();
  auto a = WriteBackup(*repo, "vm1", {RandomChunk(1)});
  {
    auto w = repo->BeginBackup("vm1", Json::object());
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->BeginDisk("root", 2 * kChunkSize));
    ASSERT_TRUE((*w)->PutChunk(0, RandomChunk(5)));
    ASSERT_TRUE((*w)->PutChunk(1, RandomChunk(1)));  // dedups with a
    // Destroyed without Commit.
  }
  auto list = repo->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  // The abandoned writer's new chunk was never published: its temp file
  // went with the writer.
  EXPECT_EQ(CountFiles(store() + "/chunks"), 1u);
  auto gc = repo->Gc();
  ASSERT_TRUE(gc) << gc.error().ToString();
  EXPECT_EQ(gc->removed_chunks, 0u);
  EXPECT_EQ(gc->removed_temp_files, 0u);
  EXPECT_EQ(gc->kept_chunks, 1u);
  EXPECT_EQ(ReadDisk(*repo, a.id)[0], RandomChunk(1));
  EXPECT_TRUE(repo->Verify()->damaged.empty());
}

TEST_P(BackupMaintenance, CrashMidWriteKeepsCommittedBackups) {
  auto repo = Create();
  auto a = WriteBackup(*repo, "vm1", {RandomChunk(1), RandomChunk(2)});
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: a writer that stores chunks, leaves a half-written temp file
    // (as a crash inside a chunk write would) and dies without unwinding.
    auto child = OpenRepository(store(), key());
    if (!child) ::_exit(2);
    auto w = (*child)->BeginBackup("vm1", Json::object());
    if (!w) ::_exit(3);
    if (!(*w)->BeginDisk("root", 3 * kChunkSize)) ::_exit(4);
    if (!(*w)->PutChunk(0, RandomChunk(7))) ::_exit(5);
    if (!(*w)->PutChunk(1, RandomChunk(2))) ::_exit(6);
    fs::create_directories(store() + "/chunks/00");
    std::ofstream(store() + "/chunks/00/.tmp-deadbeef") << "partial";
    std::ofstream(store() + "/backups/.tmp-cafe") << "{\"partial";
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  // Reopening cleans the temp manifest; the committed backup is whole.
  auto reopened = OpenRepository(store(), key());
  ASSERT_TRUE(reopened);
  EXPECT_FALSE(fs::exists(store() + "/backups/.tmp-cafe"));
  auto list = (*reopened)->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(ReadDisk(**reopened, a.id)[1], RandomChunk(2));
  auto gc = (*reopened)->Gc();
  ASSERT_TRUE(gc) << gc.error().ToString();
  // Chunk 7 of the dead writer was never published (still a temp file),
  // like the half-written one.
  EXPECT_EQ(gc->removed_chunks, 0u);
  EXPECT_EQ(gc->removed_temp_files, 2u);
  EXPECT_FALSE(fs::exists(store() + "/chunks/00/.tmp-deadbeef"));
  EXPECT_TRUE((*reopened)->Verify()->damaged.empty());
}

TEST_P(BackupMaintenance, GcWaitsOutRunningWriters) {
  auto repo = Create();
  auto w = repo->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->BeginDisk("root", kChunkSize));
  ASSERT_TRUE((*w)->PutChunk(0, RandomChunk(9)));
  // The writer's chunk is referenced by no manifest yet: gc must not run.
  // (Another process, as vireod and a CLI-side gc would be.)
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto other = OpenRepository(store(), key());
    if (!other) ::_exit(2);
    auto gc = (*other)->Gc();
    ::_exit(!gc && gc.error().code() == ErrorCode::kFailedPrecondition ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Same process, too: the lock is per open file, not per process.
  auto gc = repo->Gc();
  ASSERT_FALSE(gc);
  EXPECT_EQ(gc.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  ASSERT_TRUE(info);
  w->reset();
  auto after = repo->Gc();
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->removed_chunks, 0u);
  EXPECT_EQ(ReadDisk(*repo, info->id)[0], RandomChunk(9));
}

TEST_P(BackupMaintenance, DeleteThenGcFreesOnlyUnsharedChunks) {
  auto repo = Create();
  auto a = WriteBackup(*repo, "vm1", {RandomChunk(1), RandomChunk(2)});
  auto b = WriteBackup(*repo, "vm1", {RandomChunk(1), RandomChunk(3)});
  ASSERT_TRUE(repo->Delete(a.id));
  EXPECT_EQ(repo->Delete(a.id).error().code(), ErrorCode::kNotFound);
  auto gc = repo->Gc();
  ASSERT_TRUE(gc);
  EXPECT_EQ(gc->removed_chunks, 1u);
  EXPECT_GT(gc->removed_bytes, 0u);
  EXPECT_EQ(gc->kept_chunks, 2u);
  auto data = ReadDisk(*repo, b.id);
  EXPECT_EQ(data[0], RandomChunk(1));
  EXPECT_EQ(data[1], RandomChunk(3));
  auto empty_gc = repo->Gc();
  ASSERT_TRUE(empty_gc);
  EXPECT_EQ(empty_gc->removed_chunks, 0u);
}

TEST_P(BackupMaintenance, ExportImportRoundTrip) {
  auto repo = Create();
  auto a = RandomChunk(1), b = RandomChunk(2, 777);
  auto info = WriteBackup(*repo, "vm1", {a, {}, b});
  std::string archive = tmp_.path() + "/vm1.vbak";
  auto st = repo->Export(info.id, archive);
  ASSERT_TRUE(st) << st.error().ToString();
  // Zero chunks are skipped and data is compressed: well under 3 chunks.
  EXPECT_LT(fs::file_size(archive), 2 * kChunkSize + 4096);

  // Into a fresh store of the other kind (plain <-> encrypted).
  std::optional<Key> other_key =
      GetParam() ? std::nullopt : std::optional<Key>(TestKey(3));
  auto other = CreateRepository(tmp_.path() + "/other", other_key);
  ASSERT_TRUE(other);
  auto imported = (*other)->Import(archive);
  ASSERT_TRUE(imported) << imported.error().ToString();
  EXPECT_EQ(imported->id, info.id);
  EXPECT_EQ(imported->instance, "vm1");
  EXPECT_EQ(imported->created_at, info.created_at);
  EXPECT_EQ(imported->config, info.config);
  auto data = ReadDisk(**other, imported->id);
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0], a);
  EXPECT_TRUE(data[1].empty());
  EXPECT_EQ(data[2], b);
  // Importing again into the same store gets a fresh id.
  auto again = (*other)->Import(archive);
  ASSERT_TRUE(again);
  EXPECT_NE(again->id, info.id);

  // A damaged archive is refused and leaves no backup behind.
  FlipByte(archive, static_cast<off_t>(fs::file_size(archive) / 2));
  auto third = CreateRepository(tmp_.path() + "/third", std::nullopt);
  ASSERT_TRUE(third);
  auto bad = (*third)->Import(archive);
  ASSERT_FALSE(bad);
  EXPECT_TRUE((*third)->List()->empty());
  fs::resize_file(archive, 100);
  EXPECT_FALSE((*third)->Import(archive));
  EXPECT_FALSE((*third)->Import(tmp_.path() + "/missing"));
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, BackupMaintenance,
                         ::testing::Bool(), [](const auto& info) {
                           return info.param ? "Encrypted" : "Plain";
                         });

}  // namespace
}  // namespace vireo::backup
