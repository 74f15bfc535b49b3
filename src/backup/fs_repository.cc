#include "backup/fs_repository.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/random.h"

namespace vireo::backup {

namespace fs = std::filesystem;

namespace {
constexpr char kConfigFile[] = "/vireo-store.json";

// Reads one disk of a committed backup; holds the shared lock so gc cannot
// free its chunks while a restore runs, even if the backup is deleted.
class FsDiskReader : public DiskReader {
 public:
  FsDiskReader(std::shared_ptr<RepoState> state, FileLock lock,
               uint64_t virtual_size, uint64_t chunk_size,
               std::vector<std::string> index)
      : state_(std::move(state)),
        lock_(std::move(lock)),
        size_(virtual_size),
        chunk_size_(chunk_size),
        index_(std::move(index)) {}
  uint64_t virtual_size() const override { return size_; }
  uint64_t chunk_count() const override { return index_.size(); }
  uint64_t chunk_size() const override { return chunk_size_; }
  Result<bool> ReadChunk(uint64_t index, std::vector<uint8_t>* out) override {
    out->clear();
    if (index >= index_.size())
      return Err(ErrorCode::kInvalidArgument,
                 "chunk index " + std::to_string(index) + " out of range");
    if (index_[index].empty()) return false;
    ASSIGN_OR_RETURN(*out, state_->chunks.Get(index_[index]));
    uint64_t want = std::min(chunk_size_, size_ - index * chunk_size_);
    if (out->size() != want) {
      out->clear();
      return Err(ErrorCode::kDataLoss,
                 "chunk " + index_[index] + ": wrong size for its position");
    }
    return true;
  }

 private:
  std::shared_ptr<RepoState> state_;
  FileLock lock_;
  uint64_t size_;
  uint64_t chunk_size_;
  std::vector<std::string> index_;
};

Result<std::unique_ptr<Repository>> Finish(std::shared_ptr<RepoState> state) {
  auto repo = std::make_unique<FsRepository>(std::move(state));
  repo->CleanLeftovers();
  return repo;
}
}  // namespace

Result<Manifest> RepoState::LoadManifest(const std::string& id) const {
  if (!ValidBackupId(id))
    return Err(ErrorCode::kNotFound, "backup " + id + " not found");
  auto bytes = ReadWholeFile(ManifestPath(id));
  if (!bytes) {
    if (bytes.error().err_no() == ENOENT)
      return Err(ErrorCode::kNotFound, "backup " + id + " not found");
    return tl::unexpected(bytes.error());
  }
  return DecodeManifest(id, *bytes, keys);
}

Status RepoState::SaveManifest(const Manifest& m) const {
  return WriteFileAtomic(ManifestPath(m.info.id), EncodeManifest(m, keys));
}

Result<std::vector<std::string>> RepoState::ListIds() const {
  std::vector<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(backups_dir(), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string f = it->path().filename().string();
    if (f.size() > 5 && f.ends_with(".json")) {
      std::string id = f.substr(0, f.size() - 5);
      if (ValidBackupId(id)) ids.push_back(id);
    }
  }
  if (ec) return ErrnoErr("list " + backups_dir(), ec.value());
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::unique_ptr<Repository>> CreateRepository(
    const std::string& path, const std::optional<Key>& key) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (!fs::is_directory(path, ec))
      return Err(
          ErrorCode::kInvalidArgument,
          "backup store path " + path + " exists and is not a directory");
    if (!fs::is_empty(path, ec))
      return Err(ErrorCode::kInvalidArgument,
                 "backup store path " + path + " is not empty");
  } else {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      return Err(
          ErrorCode::kInvalidArgument,
          "parent directory of backup store path " + path + " does not exist");
    if (::mkdir(path.c_str(), 0700) != 0) return ErrnoErr("mkdir " + path);
  }
  if (::access(path.c_str(), W_OK | X_OK) != 0)
    return Err(ErrorCode::kInvalidArgument,
               "backup store path " + path + " is not writable");
  for (const char* sub : {"/chunks", "/backups"}) {
    std::string d = path + sub;
    if (::mkdir(d.c_str(), 0700) != 0) return ErrnoErr("mkdir " + d);
  }
  StoreConfig config;
  config.id = RandomHex(16);
  config.created_at = ::time(nullptr);
  std::optional<StoreKeys> keys;
  if (key) {
    keys = StoreKeys::Derive(*key);
    config.encrypted = true;
    config.key_check = KeyCheckValue(*keys);
  }
  std::string text = ToJson(config).dump(1) + "\n";
  // The config is written last: a store without it was never created.
  TRY(WriteFileAtomic(path + kConfigFile, AsBytes(text)));
  TRY(FsyncDir(path));
  return Finish(std::make_shared<RepoState>(path, config, keys));
}

Result<std::unique_ptr<Repository>> OpenRepository(
    const std::string& path, const std::optional<Key>& key) {
  auto bytes = ReadWholeFile(path + kConfigFile);
  if (!bytes) {
    if (bytes.error().err_no() == ENOENT)
      return Err(ErrorCode::kNotFound,
                 "no backup store at " + path + " (vireo-store.json missing)");
    return tl::unexpected(bytes.error());
  }
  auto json = ParseJson(std::string_view(
      reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!json)
    return Err(ErrorCode::kDataLoss,
               "backup store config " + path + kConfigFile + " is damaged");
  ASSIGN_OR_RETURN(StoreConfig config, StoreConfigFromJson(*json));
  std::optional<StoreKeys> keys;
  if (config.encrypted) {
    if (!key)
      return Err(ErrorCode::kPermissionDenied,
                 "backup store " + path +
                     " is encrypted: its encryption key is required");
    keys = StoreKeys::Derive(*key);
    if (KeyCheckValue(*keys) != config.key_check)
      return Err(ErrorCode::kPermissionDenied,
                 "wrong encryption key for store " + path);
  } else if (key) {
    return Err(
        ErrorCode::kInvalidArgument,
        "backup store " + path + " is not encrypted but a key was given");
  }
  return Finish(std::make_shared<RepoState>(path, config, keys));
}

void FsRepository::CleanLeftovers() {
  // Only when no writer runs (their temp manifests are in flight otherwise);
  // chunk temp files are left to gc, which walks the chunk tree anyway.
  auto lock =
      FileLock::TryAcquire(state_->lock_path(), FileLock::Mode::kExclusive);
  if (!lock) return;
  std::error_code ec;
  for (fs::directory_iterator it(state_->backups_dir(), ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(kTempPrefix))
      fs::remove(it->path(), ec);
  }
}

Result<std::unique_ptr<BackupWriter>> FsRepository::BeginBackup(
    const std::string& instance, const Json& config) {
  if (instance.empty())
    return Err(ErrorCode::kInvalidArgument, "backup needs an instance name");
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(state_->lock_path(),
                                                       FileLock::Mode::kShared,
                                                       kSharedLockWaitMs));
  int64_t now = ::time(nullptr);
  return MakeWriter(state_, std::move(lock), NewBackupId(now), now, instance,
                    config);
}

Result<std::vector<BackupInfo>> FsRepository::List(
    const std::string& instance) {
  ASSIGN_OR_RETURN(auto ids, state_->ListIds());
  std::vector<Manifest> found;
  for (const auto& id : ids) {
    auto m = state_->LoadManifest(id);
    if (!m) {
      // Deleted between listing and reading: not an error. A damaged
      // manifest must not hide every other backup; Verify() reports it.
      if (m.error().code() == ErrorCode::kNotFound) continue;
      if (m.error().code() == ErrorCode::kDataLoss) {
        LOG_WARN("backup store {}: {}", state_->path, m.error().message());
        continue;
      }
      return tl::unexpected(m.error());
    }
    if (instance.empty() || m->info.instance == instance)
      found.push_back(std::move(*m));
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Manifest& a, const Manifest& b) {
                     if (a.info.created_at != b.info.created_at)
                       return a.info.created_at < b.info.created_at;
                     return a.committed_us < b.committed_us;
                   });
  std::vector<BackupInfo> out;
  for (auto& m : found) out.push_back(std::move(m.info));
  return out;
}

Result<BackupInfo> FsRepository::Get(const std::string& id) {
  ASSIGN_OR_RETURN(Manifest m, state_->LoadManifest(id));
  return m.info;
}

Result<std::unique_ptr<DiskReader>> FsRepository::OpenDisk(
    const std::string& id, const std::string& disk) {
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(state_->lock_path(),
                                                       FileLock::Mode::kShared,
                                                       kSharedLockWaitMs));
  ASSIGN_OR_RETURN(Manifest m, state_->LoadManifest(id));
  for (size_t i = 0; i < m.info.disks.size(); ++i) {
    if (m.info.disks[i].name == disk)
      return std::unique_ptr<DiskReader>(std::make_unique<FsDiskReader>(
          state_, std::move(lock), m.info.disks[i].virtual_size,
          m.info.disks[i].chunk_size, std::move(m.indexes[i])));
  }
  return Err(ErrorCode::kNotFound,
             "backup " + id + " has no disk named " + disk);
}

Result<StoreStats> FsRepository::Stats() {
  StoreStats s;
  ASSIGN_OR_RETURN(auto ids, state_->ListIds());
  s.backups = ids.size();
  TRY(state_->chunks.ForEach(
      [&](const ChunkStore::Entry& e) {
        ++s.chunks;
        s.bytes_on_disk += e.size;
      },
      [](const std::string&) {}));
  return s;
}

}  // namespace vireo::backup
