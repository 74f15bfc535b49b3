// Per-disk chunk sizes: recorded in manifests and archives, old manifests
// without one read as 4 MiB, and a base with another chunk size is refused.
// Also: chunks are published only at commit (no temp files left behind).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backup/crypto.h"
#include "backup/repository.h"
#include "common/json.h"
#include "test_util.h"

namespace vireo::backup {
namespace {

namespace fs = std::filesystem;
using testing::RandomChunk;
using testing::ReadDisk;
using testing::TempDir;
using testing::WriteBackup;

std::string ManifestFile(const std::string& store, const std::string& id) {
  return store + "/backups/" + id + ".json";
}

// Rewrites a plain store's manifest as written before chunk sizes were
// recorded: no "chunk_size" per disk (the checksum is recomputed the way
// manifest.cc does).
void StripChunkSizes(const std::string& file) {
  std::ifstream in(file);
  Json j = Json::parse(in);
  for (auto& d : j["body"]["backup"]["disks"]) d.erase("chunk_size");
  std::string body =
      j["body"].dump(-1, ' ', false, Json::error_handler_t::replace);
  j["sha256"] = ToHex(Sha256(AsBytes(body)));
  std::ofstream(file, std::ios::trunc) << j.dump(1) << "\n";
}

// One disk of `size` bytes in `chunk_size` chunks (empty ones not Put).
BackupInfo WriteSized(Repository& repo, uint64_t chunk_size, uint64_t size,
                      const std::vector<std::vector<uint8_t>>& chunks,
                      const std::string& base = "") {
  auto w = repo.BeginBackup("vm1", Json{{"name", "vm1"}});
  EXPECT_TRUE(w);
  auto st = (*w)->BeginDisk("root", size, base, chunk_size);
  EXPECT_TRUE(st) << st.error().ToString();
  for (size_t i = 0; i < chunks.size(); ++i)
    if (!chunks[i].empty()) {
      EXPECT_TRUE((*w)->PutChunk(i, chunks[i]));
    }
  EXPECT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  EXPECT_TRUE(info) << info.error().ToString();
  return *info;
}

TEST(BackupChunkSize, RecordedPerDiskAndKeptOnReopen) {
  TempDir tmp;
  const std::string store = tmp.path() + "/s";
  auto repo = CreateRepository(store, std::nullopt);
  ASSERT_TRUE(repo);
  auto info = WriteBackup(**repo, "vm1", {RandomChunk(1), RandomChunk(2)});
  EXPECT_EQ(info.disks[0].chunk_size, kChunkSize);
  auto reopened = OpenRepository(store, std::nullopt);
  ASSERT_TRUE(reopened);
  auto got = (*reopened)->Get(info.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->disks[0].chunk_size, kChunkSize);
  EXPECT_EQ(ToJson(*got)["disks"][0]["chunk_size"], kChunkSize);
  auto r = (*reopened)->OpenDisk(info.id, "root");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->chunk_size(), kChunkSize);
  EXPECT_EQ((*r)->chunk_count(), 2u);
}

TEST(BackupChunkSize, LegacyManifestWithoutChunkSizeReadsAs4MiB) {
  TempDir tmp;
  const std::string store = tmp.path() + "/s";
  auto repo = CreateRepository(store, std::nullopt);
  ASSERT_TRUE(repo);
  auto c0 = RandomChunk(1, kLegacyChunkSize), c1 = RandomChunk(2, 1000);
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  ASSERT_TRUE(
      (*w)->BeginDisk("root", kLegacyChunkSize + 1000, "", kLegacyChunkSize));
  ASSERT_TRUE((*w)->PutChunk(0, c0));
  ASSERT_TRUE((*w)->PutChunk(1, c1));
  ASSERT_TRUE((*w)->EndDisk());
  auto old = (*w)->Commit("");
  ASSERT_TRUE(old);
  w->reset();
  StripChunkSizes(ManifestFile(store, old->id));

  auto reopened = OpenRepository(store, std::nullopt);
  ASSERT_TRUE(reopened);
  auto got = (*reopened)->Get(old->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->disks[0].chunk_size, kLegacyChunkSize);
  auto data = ReadDisk(**reopened, old->id);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0], c0);
  EXPECT_EQ(data[1], c1);
  auto v = (*reopened)->Verify();
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->damaged.empty());

  // Export/import keeps the 4 MiB chunking.
  std::string archive = tmp.path() + "/old.vbak";
  ASSERT_TRUE((*reopened)->Export(old->id, archive));
  auto other = CreateRepository(tmp.path() + "/o", std::nullopt);
  ASSERT_TRUE(other);
  auto imported = (*other)->Import(archive);
  ASSERT_TRUE(imported) << imported.error().ToString();
  EXPECT_EQ(imported->disks[0].chunk_size, kLegacyChunkSize);
  EXPECT_EQ(ReadDisk(**other, imported->id)[0], c0);

  // A 4 MiB base cannot serve a 256 KiB incremental; a 4 MiB one can.
  auto w2 = (*reopened)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w2);
  auto st = (*w2)->BeginDisk("root", kLegacyChunkSize + 1000, old->id);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message().find("chunks in the base"), std::string::npos)
      << st.error().message();
  w2->reset();
  auto inc = WriteSized(**reopened, kLegacyChunkSize, kLegacyChunkSize + 1000,
                        {{}, {}}, old->id);
  EXPECT_TRUE(inc.incremental);
  EXPECT_EQ(ReadDisk(**reopened, inc.id)[0], c0);
}

TEST(BackupChunkSize, RejectsUnsupportedChunkSizes) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)->BeginDisk("root", 1 << 20, "", 3000).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ((*w)->BeginDisk("root", 1 << 20, "", 8u << 20).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidChunkSize(64u << 10));
  EXPECT_TRUE(ValidChunkSize(kChunkSize));
  EXPECT_TRUE(ValidChunkSize(kLegacyChunkSize));
  EXPECT_FALSE(ValidChunkSize(0));
}

TEST(BackupChunkSize, ChunksArePublishedAtCommitOnly) {
  TempDir tmp;
  const std::string store = tmp.path() + "/s";
  auto repo = CreateRepository(store, std::nullopt);
  ASSERT_TRUE(repo);
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->BeginDisk("root", 3 * kChunkSize));
  ASSERT_TRUE((*w)->PutChunk(0, RandomChunk(1)));
  ASSERT_TRUE((*w)->PutChunk(1, RandomChunk(1)));  // same chunk twice
  ASSERT_TRUE((*w)->PutChunk(2, RandomChunk(2)));
  auto names = [&](bool temps) {
    size_t n = 0;
    for (auto& e : fs::recursive_directory_iterator(store + "/chunks"))
      if (e.is_regular_file() &&
          e.path().filename().string().starts_with(".tmp-") == temps)
        ++n;
    return n;
  };
  // Before the commit: two temp files (the repeated chunk is written once),
  // nothing under a chunk name a dedup check or gc could see.
  EXPECT_EQ(names(true), 2u);
  EXPECT_EQ(names(false), 0u);
  ASSERT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  ASSERT_TRUE(info);
  EXPECT_EQ(names(true), 0u);
  EXPECT_EQ(names(false), 2u);
  EXPECT_EQ(ReadDisk(**repo, info->id)[1], RandomChunk(1));
}

}  // namespace
}  // namespace vireo::backup
