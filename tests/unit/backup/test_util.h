#pragma once

// Shared fixtures for the backup repository tests: a temp directory and
// deterministic disk contents.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../temp_dir.h"
#include "backup/repository.h"

namespace vireo::backup::testing {

using ::vireo::test::TempDir;

// A chunk-sized buffer of pseudo-random bytes determined by `seed`.
inline std::vector<uint8_t> RandomChunk(uint32_t seed,
                                        size_t size = kChunkSize) {
  std::vector<uint8_t> out(size);
  std::mt19937 rng(seed);
  for (size_t i = 0; i + 4 <= size; i += 4) {
    uint32_t v = rng();
    std::memcpy(out.data() + i, &v, 4);
  }
  return out;
}

inline Key TestKey(uint8_t fill = 7) {
  Key k;
  k.fill(fill);
  return k;
}

// Writes one backup of `instance` with one disk "root" whose chunks are
// given (an empty vector = zero chunk) and commits it.
inline BackupInfo WriteBackup(Repository& repo, const std::string& instance,
                              const std::vector<std::vector<uint8_t>>& chunks,
                              const std::string& base = "") {
  auto w = repo.BeginBackup(instance, Json{{"name", instance}});
  EXPECT_TRUE(w) << w.error().ToString();
  uint64_t size = 0;
  for (const auto& c : chunks) size += c.empty() ? kChunkSize : c.size();
  EXPECT_TRUE((*w)->BeginDisk("root", size, base));
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].empty()) {
      if (!base.empty()) continue;
      std::vector<uint8_t> zero(kChunkSize, 0);
      EXPECT_TRUE((*w)->PutChunk(i, zero));
    } else {
      auto st = (*w)->PutChunk(i, chunks[i]);
      EXPECT_TRUE(st) << st.error().ToString();
    }
  }
  EXPECT_TRUE((*w)->EndDisk());
  auto info = (*w)->Commit("test");
  EXPECT_TRUE(info) << info.error().ToString();
  return *info;
}

// Reads back every chunk of a disk (zero chunks as empty vectors).
inline std::vector<std::vector<uint8_t>> ReadDisk(
    Repository& repo, const std::string& id, const std::string& disk = "root") {
  std::vector<std::vector<uint8_t>> out;
  auto r = repo.OpenDisk(id, disk);
  EXPECT_TRUE(r) << r.error().ToString();
  if (!r) return out;
  for (uint64_t i = 0; i < (*r)->chunk_count(); ++i) {
    std::vector<uint8_t> c;
    auto present = (*r)->ReadChunk(i, &c);
    EXPECT_TRUE(present) << present.error().ToString();
    out.push_back(std::move(c));
  }
  return out;
}

inline size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

}  // namespace vireo::backup::testing
