// FsBackupWriter: builds one backup's manifest while chunks are stored.
// Chunks are written under temp names and published (made durable, then
// named) in one batch by Commit(), right before the manifest; the backup
// exists only once its manifest is renamed into backups/ by Commit(). See
// ChunkStore::Publish for the crash-safety argument.

#include <sys/time.h>

#include <atomic>
#include <mutex>

#include "backup/fs_repository.h"

namespace vireo::backup {

namespace {

class FsBackupWriter : public BackupWriter {
 public:
  FsBackupWriter(std::shared_ptr<RepoState> state, FileLock lock,
                 std::string id, int64_t created_at, std::string instance,
                 Json config)
      : state_(std::move(state)),
        lock_(std::move(lock)),
        batch_(state_->chunks.NewBatch()) {
    manifest_.info.id = std::move(id);
    manifest_.info.created_at = created_at;
    manifest_.info.instance = std::move(instance);
    manifest_.info.config = std::move(config);
  }

  Status BeginDisk(const std::string& name, uint64_t virtual_size,
                   const std::string& base, uint64_t chunk_size) override {
    std::lock_guard lock(mu_);
    TRY(CheckUsable());
    if (in_disk_)
      return Err(
          ErrorCode::kFailedPrecondition,
          "BeginDisk: disk " + manifest_.info.disks.back().name + " not ended");
    if (name.empty())
      return Err(ErrorCode::kInvalidArgument, "disk name must not be empty");
    for (const auto& d : manifest_.info.disks)
      if (d.name == name)
        return Err(ErrorCode::kInvalidArgument,
                   "disk " + name + " is already in this backup");
    if (!ValidChunkSize(chunk_size))
      return Err(ErrorCode::kInvalidArgument,
                 "unsupported chunk size " + std::to_string(chunk_size));
    uint64_t count = (virtual_size + chunk_size - 1) / chunk_size;
    std::vector<std::string> index(count);
    if (!base.empty()) {
      TRY_CTX(TakeBaseIndex(base, name, virtual_size, chunk_size, &index),
              "incremental base " + base);
      manifest_.info.incremental = true;
      manifest_.info.parent = base;
    }
    DiskInfo info;
    info.name = name;
    info.virtual_size = virtual_size;
    info.chunk_size = chunk_size;
    manifest_.info.disks.push_back(info);
    manifest_.indexes.push_back(std::move(index));
    in_disk_ = true;
    chunks_written_ = bytes_read_ = bytes_new_ = 0;
    return Ok();
  }

  Status PutChunk(uint64_t index, std::span<const uint8_t> data) override {
    uint64_t size, chunk_size;
    {
      std::lock_guard lock(mu_);
      TRY(CheckUsable());
      if (!in_disk_)
        return Err(ErrorCode::kFailedPrecondition, "PutChunk outside a disk");
      size = manifest_.info.disks.back().virtual_size;
      chunk_size = manifest_.info.disks.back().chunk_size;
    }
    uint64_t count = (size + chunk_size - 1) / chunk_size;
    if (index >= count)
      return Err(ErrorCode::kInvalidArgument,
                 "chunk index " + std::to_string(index) + " beyond the disk");
    uint64_t want = std::min(chunk_size, size - index * chunk_size);
    if (data.size() != want)
      return Err(ErrorCode::kInvalidArgument,
                 "chunk " + std::to_string(index) + " has " +
                     std::to_string(data.size()) + " bytes, expected " +
                     std::to_string(want));
    // Hashing, compression, encryption and the file write run unlocked so
    // callers can put chunks from several threads in parallel.
    std::string name;
    uint64_t added = 0;
    if (!IsAllZero(data)) {
      auto put = state_->chunks.Put(data, batch_.get());
      if (!put) {
        std::lock_guard lock(mu_);
        failed_ = true;  // a backup with a lost chunk must not commit
        return tl::unexpected(put.error());
      }
      name = std::move(put->name);
      added = put->bytes_new;
    }
    std::lock_guard lock(mu_);
    manifest_.indexes.back()[index] = std::move(name);
    ++chunks_written_;
    bytes_read_ += data.size();
    bytes_new_ += added;
    return Ok();
  }

  Status EndDisk() override {
    std::lock_guard lock(mu_);
    TRY(CheckUsable());
    if (!in_disk_)
      return Err(ErrorCode::kFailedPrecondition, "EndDisk without BeginDisk");
    DiskInfo& d = manifest_.info.disks.back();
    d.chunks_written = chunks_written_;
    d.bytes_read = bytes_read_;
    d.bytes_new = bytes_new_;
    in_disk_ = false;
    return Ok();
  }

  void SetConsistency(const std::string& consistency) override {
    std::lock_guard lock(mu_);
    manifest_.info.consistency = consistency;
  }

  Result<BackupInfo> Commit(const std::string& note) override {
    std::lock_guard lock(mu_);
    TRY(CheckUsable());
    if (in_disk_)
      return Err(
          ErrorCode::kFailedPrecondition,
          "Commit: disk " + manifest_.info.disks.back().name + " not ended");
    manifest_.info.note = note;
    struct timeval tv {};
    gettimeofday(&tv, nullptr);
    manifest_.committed_us = int64_t{tv.tv_sec} * 1'000'000 + tv.tv_usec;
    // Every chunk the manifest references becomes durable under its name
    // here, before the manifest is written.
    TRY(state_->chunks.Publish(batch_.get()));
    TRY(state_->SaveManifest(manifest_));
    committed_ = true;
    return manifest_.info;
  }

 private:
  Status CheckUsable() const {
    if (committed_)
      return Err(ErrorCode::kFailedPrecondition, "backup already committed");
    if (failed_)
      return Err(ErrorCode::kFailedPrecondition,
                 "backup failed earlier (a chunk could not be stored)");
    return Ok();
  }

  Status TakeBaseIndex(const std::string& base, const std::string& name,
                       uint64_t size, uint64_t chunk_size,
                       std::vector<std::string>* index) {
    if (!base_ || base_->info.id != base) {
      ASSIGN_OR_RETURN(Manifest m, state_->LoadManifest(base));
      base_ = std::move(m);
    }
    for (size_t i = 0; i < base_->info.disks.size(); ++i) {
      const DiskInfo& d = base_->info.disks[i];
      if (d.name != name) continue;
      if (d.virtual_size != size)
        return Err(ErrorCode::kFailedPrecondition,
                   "disk " + name + " has size " +
                       std::to_string(d.virtual_size) + " in the base, not " +
                       std::to_string(size));
      if (d.chunk_size != chunk_size)
        return Err(ErrorCode::kFailedPrecondition,
                   "disk " + name + " has " + std::to_string(d.chunk_size) +
                       "-byte chunks in the base, not " +
                       std::to_string(chunk_size));
      *index = base_->indexes[i];
      return Ok();
    }
    return Err(ErrorCode::kFailedPrecondition,
               "base backup has no disk named " + name);
  }

  std::shared_ptr<RepoState> state_;
  FileLock lock_;  // shared: keeps gc out until this writer is gone
  // Destroyed before lock_ (declared after it): unpublished temp files are
  // removed while gc is still kept out.
  std::unique_ptr<PendingChunks> batch_;
  std::mutex mu_;
  Manifest manifest_;
  std::optional<Manifest> base_;
  bool in_disk_ = false;
  bool committed_ = false;
  bool failed_ = false;
  uint64_t chunks_written_ = 0, bytes_read_ = 0, bytes_new_ = 0;
};

}  // namespace

std::unique_ptr<BackupWriter> MakeWriter(std::shared_ptr<RepoState> state,
                                         FileLock lock, std::string id,
                                         int64_t created_at,
                                         std::string instance, Json config) {
  return std::make_unique<FsBackupWriter>(
      std::move(state), std::move(lock), std::move(id), created_at,
      std::move(instance), std::move(config));
}

}  // namespace vireo::backup
