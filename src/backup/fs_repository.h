#pragma once

// The directory-backed Repository:
//   <path>/vireo-store.json   store config (written last at creation)
//   <path>/lock               flock: writers/readers shared, gc exclusive
//   <path>/chunks/xx/<name>   chunk files (chunk_store.h)
//   <path>/backups/<id>.json  one manifest per committed backup
// State shared by the repository, its writers and readers lives in
// RepoState so a writer may outlive the Repository object that made it.

#include <memory>
#include <optional>
#include <string>

#include "backup/chunk_store.h"
#include "backup/file_util.h"
#include "backup/manifest.h"
#include "backup/repository.h"

namespace vireo::backup {

// How long a writer or reader waits for a running gc before giving up.
inline constexpr int kSharedLockWaitMs = 60'000;

struct RepoState {
  RepoState(std::string p, StoreConfig c, std::optional<StoreKeys> k)
      : path(std::move(p)),
        config(std::move(c)),
        keys(k),
        chunks(path + "/chunks", k) {}
  std::string path;
  StoreConfig config;
  std::optional<StoreKeys> keys;
  ChunkStore chunks;

  std::string lock_path() const { return path + "/lock"; }
  std::string backups_dir() const { return path + "/backups"; }
  std::string ManifestPath(const std::string& id) const {
    return backups_dir() + "/" + id + ".json";
  }
  // kNotFound for an unknown id, kDataLoss for a damaged manifest.
  [[nodiscard]] Result<Manifest> LoadManifest(const std::string& id) const;
  [[nodiscard]] Status SaveManifest(const Manifest& m) const;
  // Ids of all manifests, sorted.
  [[nodiscard]] Result<std::vector<std::string>> ListIds() const;
};

class FsRepository : public Repository {
 public:
  explicit FsRepository(std::shared_ptr<RepoState> state)
      : state_(std::move(state)) {}

  Result<std::unique_ptr<BackupWriter>> BeginBackup(
      const std::string& instance, const Json& config) override;
  Result<std::vector<BackupInfo>> List(const std::string& instance) override;
  Result<BackupInfo> Get(const std::string& id) override;
  Result<std::unique_ptr<DiskReader>> OpenDisk(
      const std::string& id, const std::string& disk) override;
  bool encrypted() const override { return state_->config.encrypted; }
  const std::string& path() const override { return state_->path; }

  Result<VerifyReport> Verify(const Progress& progress) override;
  Result<PruneReport> Prune(const PrunePolicy& policy) override;
  Status Delete(const std::string& id) override;
  Result<GcReport> Gc(const Progress& progress) override;
  Status Export(const std::string& id, const std::string& file,
                const Progress& progress) override;
  Result<BackupInfo> Import(const std::string& file,
                            const Progress& progress) override;
  Result<StoreStats> Stats() override;

  // Removes temp files left by crashed writers when nobody uses the store.
  void CleanLeftovers();

 private:
  std::shared_ptr<RepoState> state_;
};

// Writer factory (backup_writer.cc). `id` and `created_at` let Import()
// keep an archived backup's identity.
std::unique_ptr<BackupWriter> MakeWriter(std::shared_ptr<RepoState> state,
                                         FileLock lock, std::string id,
                                         int64_t created_at,
                                         std::string instance, Json config);

}  // namespace vireo::backup
