#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/events.h"
#include "core/instance.h"
#include "core/operations.h"
#include "storage/image_store.h"
#include "storage/volume_pool.h"
#include "store/store.h"

namespace vireo {

// Import a file (source) or publish a stopped instance's root disk
// (instance); exactly one of the two.
struct ImageImportRequest {
  std::string source;                // absolute path on the host
  std::string instance;              // instance name to publish
  std::vector<std::string> aliases;  // the first is the image's name
  std::string os;
  std::string description;
  // An uploaded temp file (POST /1.0/images/upload): removed once the
  // import ends, and not recorded as the image's source.
  bool remove_source = false;
};

// A root disk made from an image. Keep `hold` until the instance record
// naming the disk exists: until then the image counts as in use.
struct LaunchedDisk {
  DiskConfig disk;
  std::shared_ptr<void> hold;
};

// The image store's records and rules. Records are store objects of kind
// "image", keyed by name, with the fields name, aliases, fingerprint, format
// ("qcow2" | "iso"), path, size, virtual_size, os, description, source,
// created_at (other services read "path" and "format").
class ImageService {
 public:
  static Result<std::unique_ptr<ImageService>> Create(Store* store,
                                                      OperationManager* ops,
                                                      EventBus* events,
                                                      std::string dir);

  [[nodiscard]] Result<std::vector<Json>> List();
  // The image store's directory (uploads are staged in it).
  const std::string& dir() const { return files_->dir(); }
  // By name or any alias.
  [[nodiscard]] Result<Json> Get(const std::string& name_or_alias);
  // Validates now (names free, source readable, instance stopped), copies
  // in an operation.
  [[nodiscard]] Result<Operation> BeginImport(ImageImportRequest request);
  [[nodiscard]] Result<Operation> BeginExport(const std::string& name,
                                              const std::string& dest,
                                              const std::string& format);
  // Refused while instances are linked clones of it (they are listed).
  [[nodiscard]] Status Delete(const std::string& name_or_alias);
  [[nodiscard]] Result<Json> AddAlias(const std::string& name_or_alias,
                                      const std::string& alias);
  [[nodiscard]] Result<Json> RemoveAlias(const std::string& name_or_alias,
                                         const std::string& alias);

  // Launch support. CheckLaunchable runs before the create operation starts;
  // CreateRootDisk in it: a linked clone (or full copy) of the image in
  // pool, grown to root_size.
  [[nodiscard]] Status CheckLaunchable(const std::string& name_or_alias,
                                       uint64_t root_size);
  [[nodiscard]] Result<LaunchedDisk> CreateRootDisk(
      VolumePool* pool, const std::string& owner_id,
      const std::string& name_or_alias, bool copy, uint64_t root_size);

  // Image names and aliases: 1-63 of [A-Za-z0-9._-], starting with a letter
  // or digit (they appear in URLs and messages).
  static Status ValidateName(const std::string& name);

 private:
  ImageService(Store* store, OperationManager* ops, EventBus* events,
               std::unique_ptr<ImageStore> files)
      : store_(store), ops_(ops), events_(events), files_(std::move(files)) {}

  // Removes stored files no record names (a crash between rename and
  // record).
  void RemoveOrphans();
  Status CheckNamesFree(const std::vector<std::string>& names);
  Result<Json> ImportWork(const ImageImportRequest& request);
  // Instance names with a disk that is a linked clone of image `name`.
  Result<std::vector<std::string>> Dependents(const std::string& name);

  Store* store_;
  OperationManager* ops_;
  EventBus* events_;
  std::unique_ptr<ImageStore> files_;
  // Serializes name checks with record writes, and launches with deletes.
  std::mutex mu_;
  std::map<std::string, int> launching_;  // image name -> clones being made
};

}  // namespace vireo
