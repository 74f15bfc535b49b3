// Round trips, dedup, zero chunks, incremental bases and encryption of the
// directory repository.

#include "backup/repository.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace vireo::backup {
namespace {

using testing::CountFiles;
using testing::RandomChunk;
using testing::ReadDisk;
using testing::TempDir;
using testing::TestKey;
using testing::WriteBackup;

TEST(BackupRepository, RoundTripWithPartialLastChunk) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/store", std::nullopt);
  ASSERT_TRUE(repo) << repo.error().ToString();
  auto c0 = RandomChunk(1), c1 = RandomChunk(2, 1000);
  auto info = WriteBackup(**repo, "vm1", {c0, c1});
  EXPECT_EQ(info.disks[0].virtual_size, kChunkSize + 1000);
  EXPECT_EQ(info.disks[0].chunks_written, 2u);
  EXPECT_GT(info.disks[0].bytes_new, 0u);

  auto reopened = OpenRepository(tmp.path() + "/store", std::nullopt);
  ASSERT_TRUE(reopened);
  auto list = (*reopened)->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, info.id);
  EXPECT_EQ((*list)[0].config["name"], "vm1");
  auto data = ReadDisk(**reopened, info.id);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0], c0);
  EXPECT_EQ(data[1], c1);
  auto got = (*reopened)->Get(info.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->instance, "vm1");
  EXPECT_EQ((*reopened)->Get("20200101T000000Z-abcdef").error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ((*reopened)->OpenDisk(info.id, "nope").error().code(),
            ErrorCode::kNotFound);
}

TEST(BackupRepository, ZeroChunksAreNotStored) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto info = WriteBackup(**repo, "vm1", {{}, {}, {}});
  EXPECT_EQ(info.disks[0].bytes_new, 0u);
  EXPECT_EQ(CountFiles(tmp.path() + "/s/chunks"), 0u);
  auto data = ReadDisk(**repo, info.id);
  ASSERT_EQ(data.size(), 3u);
  for (auto& c : data) EXPECT_TRUE(c.empty());
}

TEST(BackupRepository, DeduplicatesAcrossBackups) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto a = RandomChunk(1), b = RandomChunk(2), c = RandomChunk(3);
  auto first = WriteBackup(**repo, "vm1", {a, b});
  auto second = WriteBackup(**repo, "vm2", {a, b, c});
  EXPECT_EQ(CountFiles(tmp.path() + "/s/chunks"), 3u);
  EXPECT_GT(first.disks[0].bytes_new, 0u);
  // Only chunk c is new in the second backup.
  EXPECT_LT(second.disks[0].bytes_new, first.disks[0].bytes_new);
  auto stats = (*repo)->Stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->chunks, 3u);
  EXPECT_EQ(stats->backups, 2u);
  auto vm1 = (*repo)->List("vm1");
  ASSERT_TRUE(vm1);
  ASSERT_EQ(vm1->size(), 1u);
  EXPECT_EQ((*vm1)[0].id, first.id);
}

TEST(BackupRepository, IncrementalReusesBaseIndex) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto a = RandomChunk(1), b = RandomChunk(2), b2 = RandomChunk(22);
  auto full = WriteBackup(**repo, "vm1", {a, b, {}});
  // Only chunk 1 changed; chunks 0 and 2 come from the base.
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->BeginDisk("root", 3 * kChunkSize, full.id));
  ASSERT_TRUE((*w)->PutChunk(1, b2));
  ASSERT_TRUE((*w)->EndDisk());
  (*w)->SetConsistency("filesystem");
  auto inc = (*w)->Commit("incremental");
  ASSERT_TRUE(inc);
  EXPECT_TRUE(inc->incremental);
  EXPECT_EQ(inc->consistency, "filesystem");
  // Kept in the manifest; backups that never set it read as "".
  EXPECT_EQ((*repo)->Get(inc->id)->consistency, "filesystem");
  EXPECT_EQ((*repo)->Get(full.id)->consistency, "");
  EXPECT_EQ(inc->parent, full.id);
  EXPECT_EQ(inc->disks[0].chunks_written, 1u);
  EXPECT_EQ(inc->disks[0].bytes_read, kChunkSize);
  auto data = ReadDisk(**repo, inc->id);
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0], a);
  EXPECT_EQ(data[1], b2);
  EXPECT_TRUE(data[2].empty());
  // The base is untouched.
  EXPECT_EQ(ReadDisk(**repo, full.id)[1], b);

  // A base without the disk, or with another size, is refused.
  auto w2 = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w2);
  EXPECT_EQ((*w2)->BeginDisk("root", 2 * kChunkSize, full.id).error().code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ((*w2)->BeginDisk("data", 3 * kChunkSize, full.id).error().code(),
            ErrorCode::kFailedPrecondition);
}

TEST(BackupRepository, WriterRejectsBadChunks) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  auto c = RandomChunk(1);
  EXPECT_FALSE((*w)->PutChunk(0, c));  // no disk begun
  ASSERT_TRUE((*w)->BeginDisk("root", kChunkSize + 10));
  EXPECT_FALSE((*w)->PutChunk(2, c));  // beyond the disk
  EXPECT_FALSE((*w)->PutChunk(1, c));  // last chunk is short
  EXPECT_FALSE((*w)->Commit("x"));     // disk not ended
}

TEST(BackupRepository, MultipleDisksAndListOrder) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(WriteBackup(**repo, "vm1", {RandomChunk(i)}).id);
  auto list = (*repo)->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*list)[i].id, ids[i]);

  auto w = (*repo)->BeginBackup("vm2", Json::object());
  ASSERT_TRUE(w);
  auto a = RandomChunk(5), b = RandomChunk(6, 512);
  ASSERT_TRUE((*w)->BeginDisk("root", kChunkSize));
  ASSERT_TRUE((*w)->PutChunk(0, a));
  ASSERT_TRUE((*w)->EndDisk());
  ASSERT_TRUE((*w)->BeginDisk("data", 512));
  ASSERT_TRUE((*w)->PutChunk(0, b));
  ASSERT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  ASSERT_TRUE(info);
  EXPECT_EQ(ReadDisk(**repo, info->id, "root")[0], a);
  EXPECT_EQ(ReadDisk(**repo, info->id, "data")[0], b);
}

TEST(BackupRepository, CreateValidatesPath) {
  TempDir tmp;
  EXPECT_EQ(CreateRepository(tmp.path() + "/no/such/dir", std::nullopt)
                .error()
                .code(),
            ErrorCode::kInvalidArgument);
  std::ofstream(tmp.path() + "/file") << "x";
  EXPECT_EQ(CreateRepository(tmp.path() + "/file", std::nullopt).error().code(),
            ErrorCode::kInvalidArgument);
  // An existing empty directory is fine; a non-empty one is not.
  std::filesystem::create_directory(tmp.path() + "/empty");
  EXPECT_TRUE(CreateRepository(tmp.path() + "/empty", std::nullopt));
  EXPECT_EQ(
      CreateRepository(tmp.path() + "/empty", std::nullopt).error().code(),
      ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenRepository(tmp.path(), std::nullopt).error().code(),
            ErrorCode::kNotFound);
}

TEST(BackupRepository, EncryptedStoreHidesDataAndChecksKey) {
  TempDir tmp;
  std::string path = tmp.path() + "/enc";
  auto repo = CreateRepository(path, TestKey());
  ASSERT_TRUE(repo);
  EXPECT_TRUE((*repo)->encrypted());
  // Highly compressible plaintext with a marker that must not show up.
  std::vector<uint8_t> chunk(kChunkSize, 'A');
  std::memcpy(chunk.data(), "SECRET-MARKER", 13);
  auto info = WriteBackup(**repo, "secret-vm", {chunk});
  for (auto& e : std::filesystem::recursive_directory_iterator(path)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(f)), {});
    EXPECT_EQ(content.find("SECRET-MARKER"), std::string::npos) << e.path();
    EXPECT_EQ(content.find("secret-vm"), std::string::npos) << e.path();
  }
  // The config holds a key check value, never the key.
  std::ifstream cf(path + "/vireo-store.json");
  std::string config((std::istreambuf_iterator<char>(cf)), {});
  EXPECT_NE(config.find("\"encrypted\": true"), std::string::npos);
  EXPECT_EQ(config.find("0707070707"), std::string::npos);

  auto wrong = OpenRepository(path, TestKey(8));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(wrong.error().message().find("wrong encryption key for store"),
            std::string::npos);
  auto missing = OpenRepository(path, std::nullopt);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(missing.error().message().find("encrypted"), std::string::npos);

  auto right = OpenRepository(path, TestKey());
  ASSERT_TRUE(right);
  EXPECT_EQ(ReadDisk(**right, info.id)[0], chunk);
  auto list = (*right)->List("secret-vm");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
  // A plain store refuses a key rather than silently ignoring it.
  ASSERT_TRUE(CreateRepository(tmp.path() + "/plain", std::nullopt));
  EXPECT_FALSE(OpenRepository(tmp.path() + "/plain", TestKey()));
}

TEST(BackupRepository, LoadKeyFileFormats) {
  TempDir tmp;
  std::string raw = tmp.path() + "/raw", hex = tmp.path() + "/hex",
              bad = tmp.path() + "/bad";
  std::ofstream(raw, std::ios::binary) << std::string(32, '\x07');
  std::ofstream(hex) << std::string(64, 'a') << "\n";
  std::ofstream(bad) << "short";
  auto k1 = LoadKeyFile(raw);
  ASSERT_TRUE(k1);
  EXPECT_EQ(*k1, TestKey());
  auto k2 = LoadKeyFile(hex);
  ASSERT_TRUE(k2);
  EXPECT_EQ((*k2)[0], 0xaa);
  EXPECT_EQ(LoadKeyFile(bad).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(LoadKeyFile(tmp.path() + "/none"));
}

TEST(BackupRepository, ParallelPutChunk) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", TestKey());
  ASSERT_TRUE(repo);
  auto w = (*repo)->BeginBackup("vm1", Json::object());
  ASSERT_TRUE(w);
  constexpr int kChunks = 12;
  ASSERT_TRUE((*w)->BeginDisk("root", kChunks * kChunkSize));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < kChunks; i += 4)
        // Chunks 0 and 6 are equal: concurrent dedup of one name.
        if (!(*w)->PutChunk(i, RandomChunk(i % 6 == 0 ? 100 : i))) ++failures;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->disks[0].chunks_written, static_cast<uint64_t>(kChunks));
  auto data = ReadDisk(**repo, info->id);
  ASSERT_EQ(data.size(), static_cast<size_t>(kChunks));
  for (int i = 0; i < kChunks; ++i)
    EXPECT_EQ(data[i], RandomChunk(i % 6 == 0 ? 100 : i)) << i;
  EXPECT_EQ(CountFiles(tmp.path() + "/s/chunks"),
            static_cast<size_t>(kChunks - 1));
}

TEST(BackupRepository, ConfigWithInvalidUtf8StillCommits) {
  TempDir tmp;
  auto repo = CreateRepository(tmp.path() + "/s", std::nullopt);
  ASSERT_TRUE(repo);
  auto w = (*repo)->BeginBackup("vm1", Json{{"note", "bad \xff byte"}});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->BeginDisk("root", 4096));
  ASSERT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("");
  ASSERT_TRUE(info);
  auto got = (*repo)->Get(info->id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_TRUE((*repo)->Verify()->damaged.empty());
}

}  // namespace
}  // namespace vireo::backup
