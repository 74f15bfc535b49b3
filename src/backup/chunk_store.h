#pragma once

// Content-addressed chunk files under <repo>/chunks/<2 hex>/<64 hex>.
//
// File layout (little endian):
//   magic "VCHK" | version u8 (1) | flags u8 | reserved u16 | plain_len u32
//   payload
// flags bit 0: payload is zstd-compressed (else stored raw because zstd did
// not shrink it); bit 1: payload is AES-256-GCM sealed (nonce || ct || tag,
// the 12 header bytes and the chunk name are authenticated data).

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backup/crypto.h"
#include "backup/repository.h"
#include "common/error.h"

namespace vireo::backup {

// Sub-keys of an encrypted store, all derived from the user's key.
struct StoreKeys {
  Key chunk_id;   // names chunks: HMAC(chunk_id, plaintext)
  Key chunk_enc;  // seals chunk payloads
  Key manifest;   // seals manifests
  Key check;      // key check value in vireo-store.json
  static StoreKeys Derive(const Key& key);
};

bool IsAllZero(std::span<const uint8_t> data);

class ChunkStore {
 public:
  ChunkStore(std::string dir, std::optional<StoreKeys> keys)
      : dir_(std::move(dir)), keys_(std::move(keys)) {}

  // The name of a plaintext chunk (hex).
  std::string NameOf(std::span<const uint8_t> plain) const;
  static bool ValidName(std::string_view name);
  std::string PathOf(const std::string& name) const;

  struct PutResult {
    std::string name;
    uint64_t bytes_new = 0;  // file size written; 0 when deduplicated
  };
  // Stores a non-zero chunk unless one with the same name exists. The new
  // file is fsync'd; its directory is recorded for SyncDirs().
  [[nodiscard]] Result<PutResult> Put(std::span<const uint8_t> plain);
  // Makes the renames of all Put()s so far durable.
  [[nodiscard]] Status SyncDirs();

  // Reads, authenticates, decompresses and re-hashes a chunk. kDataLoss
  // naming the chunk when it is missing, truncated or damaged.
  [[nodiscard]] Result<std::vector<uint8_t>> Get(const std::string& name) const;

  struct Entry {
    std::string name;
    uint64_t size = 0;
  };
  // Every chunk file; temp files left by crashes are reported to `on_temp`.
  [[nodiscard]] Status ForEach(
      const std::function<void(const Entry&)>& on_chunk,
      const std::function<void(const std::string& path)>& on_temp) const;

  const std::string& dir() const { return dir_; }

 private:
  std::vector<uint8_t> Encode(const std::string& name,
                              std::span<const uint8_t> plain) const;
  std::string dir_;
  std::optional<StoreKeys> keys_;
  std::mutex mu_;
  std::set<std::string> dirty_dirs_;
};

}  // namespace vireo::backup
