#pragma once

// The registry of backup stores (backup repositories in directories),
// persisted as "backup_store" records {name, path, encrypt_key_file,
// created_at}, and the store-level actions of the API: backups listing,
// verify, prune, gc, export, import. Repositories are opened lazily and
// cached; backup jobs get them through Open(). Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backup/repository.h"
#include "common/error.h"
#include "common/json.h"
#include "core/operations.h"
#include "store/store.h"

namespace vireo {

struct BackupStoreSpec {
  std::string name;
  std::string path;              // absolute directory on the vireod host
  std::string encrypt_key_file;  // "" = unencrypted; the key itself is
                                 // never stored, only this path
  int64_t created_at = 0;
};
Json ToJson(const BackupStoreSpec& spec);

class BackupStoreService {
 public:
  BackupStoreService(Store* store, OperationManager* operations);

  // Validates the path (an existing, writable directory, empty or already a
  // backup store, which is then adopted) and the key file; registers the
  // store. kInvalidArgument (400) with nothing created on a bad path/key.
  [[nodiscard]] Result<Json> Create(const BackupStoreSpec& spec);
  // Every store with its stats; a store that cannot be opened (missing
  // path, unreadable or wrong key) is listed with "error".
  [[nodiscard]] Result<std::vector<Json>> List();
  [[nodiscard]] Result<Json> Info(const std::string& name);
  // Forgets the store; its directory and backups stay on disk (they can be
  // registered again with Create).
  [[nodiscard]] Status Delete(const std::string& name);

  // "" = the only store, or the first created when there are several.
  [[nodiscard]] Result<std::string> Resolve(const std::string& name);
  // The store's repository (opened once and cached).
  [[nodiscard]] Result<std::shared_ptr<backup::Repository>> Open(
      const std::string& name);

  [[nodiscard]] Result<std::vector<Json>> ListBackups(
      const std::string& store, const std::string& instance);
  [[nodiscard]] Result<Json> GetBackup(const std::string& store,
                                       const std::string& id);
  [[nodiscard]] Status DeleteBackup(const std::string& store,
                                    const std::string& id);

  // Long actions run as operations with metadata.progress.
  [[nodiscard]] Result<Operation> BeginVerify(const std::string& store);
  [[nodiscard]] Result<Operation> BeginPrune(const std::string& store,
                                             const backup::PrunePolicy& policy);
  [[nodiscard]] Result<Operation> BeginGc(const std::string& store);
  [[nodiscard]] Result<Operation> BeginExport(const std::string& store,
                                              const std::string& id,
                                              const std::string& file);
  [[nodiscard]] Result<Operation> BeginImport(const std::string& store,
                                              const std::string& file);

 private:
  Result<BackupStoreSpec> Load(const std::string& name);
  Result<std::shared_ptr<backup::Repository>> OpenSpec(
      const BackupStoreSpec& spec);
  Result<Json> Describe(const BackupStoreSpec& spec);
  // Resolves and opens the store, then runs `work` as an operation.
  Result<Operation> StartOnStore(
      const std::string& store, const std::string& description,
      std::function<Result<Json>(backup::Repository&, const backup::Progress&)>
          work);

  Store* store_;
  OperationManager* operations_;
  std::mutex create_mu_;
  std::mutex mu_;  // guards open_
  std::map<std::string, std::shared_ptr<backup::Repository>> open_;
};

// Store names: 1-63 of [A-Za-z0-9-_.], starting with a letter or digit.
[[nodiscard]] Status ValidateBackupStoreName(const std::string& name);

}  // namespace vireo
