#pragma once

// Content-addressed chunk files under <repo>/chunks/<2 hex>/<64 hex>.
//
// File layout (little endian):
//   magic "VCHK" | version u8 (1) | flags u8 | reserved u16 | plain_len u32
//   payload
// flags bit 0: payload is zstd-compressed (else stored raw because zstd did
// not shrink it); bit 1: payload is AES-256-GCM sealed (nonce || ct || tag,
// the 12 header bytes and the chunk name are authenticated data).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backup/crypto.h"
#include "backup/repository.h"
#include "common/error.h"
#include "common/fd.h"

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

// The chunks one writer has stored but not yet published: they sit under
// temp names (kTempPrefix) next to their final path until Publish().
// Destroying it unpublished removes them (an abandoned backup).
//
// A flusher thread syncs the filesystem in the background after every
// kFlushEvery bytes of new chunk files, so the data is mostly on disk by
// the time Publish() needs it durable (a backup writes gigabytes; one flush
// of all of it at commit cost about a second). Those flushes only hurry
// writeback: durability is still decided by Publish()'s own syncfs.
class PendingChunks {
 public:
  static constexpr uint64_t kFlushEvery = 256ull << 20;
  PendingChunks() = default;
  PendingChunks(const PendingChunks&) = delete;
  PendingChunks& operator=(const PendingChunks&) = delete;
  ~PendingChunks();

 private:
  friend class ChunkStore;
  void Flusher();
  void Written(uint64_t bytes);  // mu_ held
  void StopFlusher();

  std::mutex mu_;
  UniqueFd sync_fd_;      // opened before any write: see Publish()
  Status status_ = Ok();  // opening sync_fd_, or a background syncfs
  std::map<std::string, std::string> temps_;  // chunk name → temp path
  uint64_t unflushed_ = 0;  // new file bytes since the last flush started
  bool flush_wanted_ = false, stop_ = false;
  std::condition_variable cv_;
  std::thread flusher_;
};

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
  // Starts a batch of Put()s for one writer.
  std::unique_ptr<PendingChunks> NewBatch() const;
  // Stores a non-zero chunk unless one with the same name exists (in the
  // store or in `batch`). The new file is written under a temp name, not
  // synced: it gets its name in Publish().
  [[nodiscard]] Result<PutResult> Put(std::span<const uint8_t> plain,
                                      PendingChunks* batch);
  // Makes every chunk of `batch` durable under its name, and every chunk
  // the batch deduplicated against too. After it returns OK, a manifest
  // referencing them may be written.
  [[nodiscard]] Status Publish(PendingChunks* batch);

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
  // The chunk file's bytes, in a per-thread buffer valid until the
  // thread's next Encode().
  std::span<uint8_t> Encode(const std::string& name,
                            std::span<const uint8_t> plain) const;
  std::string dir_;
  std::optional<StoreKeys> keys_;
};

}  // namespace vireo::backup
