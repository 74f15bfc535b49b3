#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "storage/volume_pool.h"
#include "store/store.h"

namespace vireo {

// What `vireo storage create` asks for.
struct PoolSpec {
  std::string name;
  std::string type;          // "dir" or "lvm-thin"
  std::string path;          // dir: the directory
  std::string vg;            // lvm-thin: volume group
  std::string thin_pool;     // lvm-thin: thin pool LV in vg
  uint64_t quota_bytes = 0;  // sum of volume sizes allowed; 0: no quota
};

// The registry of storage pools: the built-in "default" directory pool plus
// the pools an administrator added, persisted as "storage_pool" records and
// re-opened at start. Thread-safe.
class StorageService {
 public:
  static constexpr const char* kDefaultPool = "default";

  // default_pool is not owned and is always present.
  StorageService(Store* store, VolumePool* default_pool);
  ~StorageService();

  // Re-opens persisted pools; one that cannot be opened is logged and left
  // out (its record stays, so it comes back once fixed).
  void Load();

  [[nodiscard]] Result<Json> Create(const PoolSpec& spec);
  // Usage of every pool, default first.
  [[nodiscard]] Result<std::vector<Json>> List();
  [[nodiscard]] Result<Json> Show(const std::string& name);
  // Refused while the pool holds any volume; the default cannot be deleted.
  [[nodiscard]] Status Delete(const std::string& name);

  // kNotFound for an unknown pool.
  [[nodiscard]] Result<VolumePool*> Find(const std::string& name);
  // kResourceExhausted if adding `extra` bytes of volume size would pass
  // the pool's quota.
  [[nodiscard]] Status CheckQuota(const std::string& name, uint64_t extra);

 private:
  struct Entry {
    PoolSpec spec;
    std::unique_ptr<VolumePool> pool;
  };
  Result<Json> Describe(const std::string& name, VolumePool* pool,
                        const PoolSpec* spec);

  Store* store_;
  VolumePool* default_pool_;
  std::mutex mu_;
  std::map<std::string, Entry> pools_;
};

Json ToJson(const PoolSpec& spec);
Result<PoolSpec> PoolSpecFromJson(const Json& j);
// Pool and volume names: 1-63 of [A-Za-z0-9-_.], starting with a letter or
// digit (they become file and LV names).
Status ValidateStorageName(const std::string& what, const std::string& name);

}  // namespace vireo
