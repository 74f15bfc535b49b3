#pragma once

// A backup repository ("backup store"): a directory holding deduplicated,
// compressed and optionally encrypted chunks of VM disks, plus one manifest
// per backup. Shared contract between the repository implementation
// (src/backup/) and the backup jobs that feed it (core/backup_service).
//
// Disks are cut into fixed-size chunks aligned to disk offsets (like PBS's
// fixed index for VM images): chunk i of a disk covers
// [i*chunk_size, (i+1)*chunk_size). The chunk size is recorded per disk in
// each manifest; new backups use kChunkSize, manifests written before it was
// recorded mean kLegacyChunkSize.
// A chunk is named by the SHA-256 of its plaintext (HMAC-SHA256 with a key
// derived from the encryption key in an encrypted store, so names reveal
// nothing), compressed with zstd, then sealed with AES-256-GCM when the store
// is encrypted. All-zero chunks are not stored at all.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"

namespace vireo::backup {

// 256 KiB: an incremental reads and stores every chunk holding a dirty
// 64 KiB cluster, so scattered writes cost little more than their own size
// (with 4 MiB chunks a 5% scattered rewrite dirtied ~38% of the chunks),
// while chunk files stay large enough that per-file overhead (hash, inode,
// rounding up to the filesystem block) is small. Measured in
// bench/run-backup; see NOTES.md.
inline constexpr uint64_t kChunkSize = 256ull << 10;
// What a disk without a recorded chunk size uses (backups made before the
// chunk size was recorded).
inline constexpr uint64_t kLegacyChunkSize = 4ull << 20;
// The largest chunk any backup may use: bounds reads of chunk files and
// archive records.
inline constexpr uint64_t kMaxChunkSize = 4ull << 20;

// Chunk sizes this code reads and writes: powers of two, 64 KiB..4 MiB.
bool ValidChunkSize(uint64_t size);

using Key = std::array<uint8_t, 32>;  // AES-256 key, never stored in the repo

// Reads a 32-byte key file (raw bytes, or 64 hex characters).
[[nodiscard]] Result<Key> LoadKeyFile(const std::string& path);

struct DiskInfo {
  std::string name;           // the disk's name in the instance config
  uint64_t virtual_size = 0;  // bytes
  uint64_t chunk_size = kChunkSize;
  uint64_t chunks_written = 0;  // chunks read from the source this time
  uint64_t bytes_read = 0;      // source bytes read (the incremental metric)
  uint64_t bytes_new = 0;       // bytes added to the store (after zstd)
};

struct BackupInfo {
  std::string
      id;  // unique, URL-safe, sortable: "<UTC yyyymmddThhmmssZ>-<6 hex>"
  std::string instance;      // instance name at backup time
  int64_t created_at = 0;    // unix seconds
  bool incremental = false;  // some chunks were taken from `parent`
  std::string parent;        // the backup chunks were reused from, if any
  std::string note;          // e.g. why a full read happened
  // How consistent the point in time is: "filesystem" (guest agent froze
  // the filesystems), "crash" (as after a power cut), "stopped" (the VM was
  // not running); "" in backups made before this was recorded.
  std::string consistency;
  Json config;  // the instance config (JSON) at backup time
  std::vector<DiskInfo> disks;
};

// Progress callback: bytes done out of total for the current step.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

// API/manifest JSON of a backup's public info (no chunk index).
Json ToJson(const BackupInfo& b);

// --- Maintenance (added by the repository implementation) ---

// Verify(): every chunk referenced by any backup is read once, authenticated
// and re-hashed; a backup is damaged when its manifest or any of its chunks
// is.
struct BackupStatus {
  std::string id;
  std::string instance;
  bool ok = true;
  std::vector<std::string> errors;  // "chunk <name>: missing", ...
};
struct VerifyReport {
  uint64_t chunks_checked = 0;
  uint64_t bytes_checked = 0;         // plaintext bytes
  std::vector<BackupStatus> backups;  // oldest first
  std::vector<std::string> damaged;   // ids of damaged backups
};
Json ToJson(const VerifyReport& r);

// Proxmox Backup Server semantics, applied per instance (see
// prune_policy.h): keep-last keeps the N newest; keep-daily/weekly/monthly
// each keep the newest backup of the N most recent UTC days/ISO weeks/months
// not already covered by an earlier rule. 0 = rule off; backups no rule
// keeps are removed; all rules off keeps everything.
struct PrunePolicy {
  std::string instance;  // "" = every instance, each pruned on its own
  int keep_last = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  bool dry_run = false;
};
struct PruneReport {
  std::vector<std::string> kept;
  std::vector<std::string> removed;
};
Json ToJson(const PruneReport& r);

struct GcReport {
  uint64_t removed_chunks = 0;
  uint64_t removed_bytes = 0;  // on disk
  uint64_t kept_chunks = 0;
  uint64_t kept_bytes = 0;
  uint64_t removed_temp_files = 0;  // leftovers of crashed writers
};
Json ToJson(const GcReport& r);

struct StoreStats {
  uint64_t backups = 0;
  uint64_t chunks = 0;
  uint64_t bytes_on_disk = 0;  // chunk files
};
Json ToJson(const StoreStats& s);

// One backup being written. Nothing is visible in the repository until
// Commit(); destroying the writer without Commit() discards it (and a crash
// leaves only files that the next Open() or gc removes).
class BackupWriter {
 public:
  virtual ~BackupWriter() = default;
  // Starts a disk. With `base` (a committed backup id holding a disk of the
  // same name and size), every chunk not Put() is taken from base's index:
  // that is how an incremental backup stays a complete, independent point.
  // Without `base`, chunks not Put() are zero. The disk is cut into
  // `chunk_size` chunks; a base whose disk has another chunk size is
  // kFailedPrecondition (its index cannot be reused: read the disk fully).
  [[nodiscard]] virtual Status BeginDisk(const std::string& name,
                                         uint64_t virtual_size,
                                         const std::string& base = "",
                                         uint64_t chunk_size = kChunkSize) = 0;
  // Stores chunk `index` of the current disk. data.size() is the disk's
  // chunk size, except for the last chunk of a disk whose size is not a
  // multiple.
  // Thread-safe across different indexes (callers may hash/compress in
  // parallel).
  [[nodiscard]] virtual Status PutChunk(uint64_t index,
                                        std::span<const uint8_t> data) = 0;
  [[nodiscard]] virtual Status EndDisk() = 0;
  // Recorded in the manifest at Commit(); see BackupInfo::consistency.
  virtual void SetConsistency(const std::string& consistency) = 0;
  // Publishes the backup atomically (manifest written, fsync'd, renamed).
  [[nodiscard]] virtual Result<BackupInfo> Commit(const std::string& note) = 0;
};

// Reads one disk of a committed backup.
class DiskReader {
 public:
  virtual ~DiskReader() = default;
  virtual uint64_t virtual_size() const = 0;
  virtual uint64_t chunk_count() const = 0;
  virtual uint64_t chunk_size() const = 0;
  // Fills `out` with chunk `index` (verified: hash and GCM tag checked).
  // Returns false, leaving `out` empty, for an all-zero chunk.
  // kDataLoss for a missing or damaged chunk; kPermissionDenied for a wrong
  // key.
  [[nodiscard]] virtual Result<bool> ReadChunk(uint64_t index,
                                               std::vector<uint8_t>* out) = 0;
};

class Repository {
 public:
  virtual ~Repository() = default;
  // Starts a backup of `instance`. Holds the repository's writer lock
  // (shared with other writers, exclusive against prune/gc deleting data)
  // until the writer is destroyed.
  [[nodiscard]] virtual Result<std::unique_ptr<BackupWriter>> BeginBackup(
      const std::string& instance, const Json& config) = 0;
  // Committed backups, oldest first; all instances when `instance` is empty.
  [[nodiscard]] virtual Result<std::vector<BackupInfo>> List(
      const std::string& instance = "") = 0;
  [[nodiscard]] virtual Result<BackupInfo> Get(const std::string& id) = 0;
  [[nodiscard]] virtual Result<std::unique_ptr<DiskReader>> OpenDisk(
      const std::string& id, const std::string& disk) = 0;
  virtual bool encrypted() const = 0;
  virtual const std::string& path() const = 0;

  // Maintenance. Defaults answer "unsupported" so other implementations
  // of this interface keep compiling.
  [[nodiscard]] virtual Result<VerifyReport> Verify(
      const Progress& progress = {});
  // Removes manifests only (safe next to running writers); Gc() frees space.
  [[nodiscard]] virtual Result<PruneReport> Prune(const PrunePolicy& policy);
  [[nodiscard]] virtual Status Delete(const std::string& id);
  // Removes chunks no backup references and crash leftovers. Needs the
  // repository exclusively: kFailedPrecondition while a backup is written.
  [[nodiscard]] virtual Result<GcReport> Gc(const Progress& progress = {});
  // Writes one portable archive file (see docs/backups.md) of a backup.
  [[nodiscard]] virtual Status Export(const std::string& id,
                                      const std::string& file,
                                      const Progress& progress = {});
  // Adds the backup in an archive written by Export() (from any store) as a
  // new committed backup; its id is kept unless taken.
  [[nodiscard]] virtual Result<BackupInfo> Import(
      const std::string& file, const Progress& progress = {});
  [[nodiscard]] virtual Result<StoreStats> Stats();
};

// Creates a new repository in `path` (must exist and be empty or absent
// but with an existing parent). With a key, the store is encrypted; only a
// key check value is written, never the key.
[[nodiscard]] Result<std::unique_ptr<Repository>> CreateRepository(
    const std::string& path, const std::optional<Key>& key);
// Opens an existing repository; kPermissionDenied if the key is wrong or
// missing for an encrypted store.
[[nodiscard]] Result<std::unique_ptr<Repository>> OpenRepository(
    const std::string& path, const std::optional<Key>& key);

}  // namespace vireo::backup
