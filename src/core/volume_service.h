#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/storage_service.h"
#include "core/vm_engine.h"
#include "store/store.h"

namespace vireo {

// A pool volume as stored ("volume" records keyed "<pool>/<name>").
struct Volume {
  std::string pool;
  std::string name;
  std::string path;
  std::string format;  // "qcow2" or "raw"
  uint64_t size_bytes = 0;
  std::string attached_to;  // instance name, empty when free
  int64_t created_at = 0;
};
Json ToJson(const Volume& volume);
Result<Volume> VolumeFromJson(const Json& j);

// Standalone volumes: create, attach to and detach from instances (hot-plug
// when they run), grow, delete. A volume belongs to at most one instance.
// Changes to an instance take its lifecycle lock; changes to volumes are
// serialized by one service mutex taken after it.
class VolumeService {
 public:
  struct Options {
    std::string
        qemu_user;  // QEMU's uid after -runas; it must open hot-plugged volumes
    std::chrono::seconds unplug_timeout{90};
  };
  VolumeService(Store* store, StorageService* pools, InstanceService* instances,
                VmEngine* engine, OperationManager* ops, Options options);

  [[nodiscard]] Result<Json> Create(const std::string& pool,
                                    const std::string& name, uint64_t size);
  // Empty pool: every pool's volumes.
  [[nodiscard]] Result<std::vector<Json>> List(const std::string& pool);
  [[nodiscard]] Result<Json> Get(const std::string& pool,
                                 const std::string& name);
  // Refused while the volume is attached.
  [[nodiscard]] Status Delete(const std::string& pool, const std::string& name);

  // Validated now (bad input changes nothing and returns the error); the
  // change runs in an operation.
  [[nodiscard]] Result<Operation> BeginAttach(const std::string& pool,
                                              const std::string& name,
                                              const std::string& instance);
  [[nodiscard]] Result<Operation> BeginDetach(const std::string& pool,
                                              const std::string& name,
                                              const std::string& instance);
  // Grow only; online through QMP when the holder runs.
  [[nodiscard]] Result<Operation> BeginResize(const std::string& pool,
                                              const std::string& name,
                                              uint64_t new_size);

  // The work of the operations above, synchronous.
  [[nodiscard]] Result<Json> Attach(const std::string& pool,
                                    const std::string& name,
                                    const std::string& instance);
  [[nodiscard]] Result<Json> Detach(const std::string& pool,
                                    const std::string& name,
                                    const std::string& instance);
  [[nodiscard]] Result<Json> Resize(const std::string& pool,
                                    const std::string& name, uint64_t new_size);

 private:
  Result<Volume> Load(const std::string& pool, const std::string& name);
  // The instance really holding the volume: attached_to when that instance
  // still exists and lists the volume; empty otherwise (a deleted instance
  // frees its volumes).
  std::string Holder(const Volume& volume);
  Status CheckAttach(const Volume& volume, const std::string& instance);
  Status CheckDetach(const Volume& volume, const std::string& instance);
  // Running (hot-plug) or stopped (config edit); other states are refused.
  Result<bool> IsLive(const Instance& instance);
  void GiveToQemu(const std::string& path);

  Store* store_;
  StorageService* pools_;
  InstanceService* instances_;
  VmEngine* engine_;
  OperationManager* ops_;
  Options options_;
  std::mutex mu_;
};

}  // namespace vireo
