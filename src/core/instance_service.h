#pragma once

#include <functional>
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
#include "core/resources.h"
#include "core/vm_engine.h"
#include "storage/volume_pool.h"
#include "store/store.h"

namespace vireo {

class NetworkAttacher;

// A create request, as decoded from the API (sizes already parsed).
struct DiskRequest {
  uint64_t size_bytes = 0;  // new empty disk of this size, or
  std::string source;       // an existing image file to copy (qcow2/raw)
  std::string pool;         // storage pool to create it in; empty: default
};
// NoCloud seed contents; a seed disk is generated when any field is set.
struct CloudInitRequest {
  std::string hostname;
  std::vector<std::string> ssh_keys;  // public key lines
  std::string user_data;              // verbatim user-data document
  bool empty() const {
    return hostname.empty() && ssh_keys.empty() && user_data.empty();
  }
};
// One NIC on a managed network.
struct NicRequest {
  std::string network;  // managed network name
  std::string mac;      // empty: generated
  std::string ip;       // static DHCP reservation, empty: dynamic
};
struct CreateRequest {
  std::string name;
  int cpus = 1;
  uint64_t memory_bytes = 256ull << 20;
  std::string kernel, initrd, cmdline;
  std::vector<DiskRequest> disks;
  int nics = 1;  // user-mode NICs (used when `networks` is empty)
  std::vector<NicRequest> networks;  // managed-network NICs
  RestartPolicy restart_policy = RestartPolicy::kNever;
  // Deploy from an image: the root disk is a linked clone (qcow2 backing
  // file) of it, or a full copy with copy_image.
  std::string image;
  bool copy_image = false;
  uint64_t root_size = 0;  // grow the root disk to this size (0: image's)
  std::string iso;         // image attached as a CD-ROM to install from
  std::string firmware = "bios";  // "bios" or "uefi"
  std::string os_type = "linux";  // "linux", "windows" or "other"
  CloudInitRequest cloud_init;
  bool start = false;  // start once created (vireo launch)
};

class ImageService;

enum class StateAction { kStart, kStop, kRestart, kPause, kResume };
Result<StateAction> ParseStateAction(std::string_view text);

// The instance lifecycle: owns the rules for what may happen in which state.
// Synchronous methods validate and return quickly; the Begin* methods return
// an operation that does the slow part.
class InstanceService {
 public:
  struct Options {
    int stop_timeout_s = 30;  // ACPI grace period before a kill
    // Per-instance persistent files that are not pool volumes (UEFI
    // variables, cloud-init seed) live in state_dir/<instance id>/, which is
    // removed with the instance. Empty: such features are unavailable.
    std::string state_dir;
    // Image store for create requests with an image; null: none.
    ImageService* images = nullptr;
    // Managed networks (bridges, DHCP); null: user-mode NICs only.
    NetworkAttacher* networks = nullptr;
    // Resolves DiskRequest.pool (and checks its quota for `size` bytes);
    // unset: only the default pool exists.
    std::function<Result<VolumePool*>(const std::string& pool, uint64_t size)>
        find_pool;
  };
  InstanceService(Store* store, VmEngine* engine, VolumePool* pool,
                  EventBus* events, OperationManager* ops,
                  ResourceTracker* resources, Options options);
  ~InstanceService();

  // Re-adopts running VMs and fixes states after a vireod restart.
  void Recover();

  [[nodiscard]] Result<std::vector<Instance>> List();
  [[nodiscard]] Result<std::vector<std::string>> ListNames();
  [[nodiscard]] Result<Instance> Get(const std::string& name);
  // Validates synchronously (bad input returns an error and changes
  // nothing), then creates disks in an operation.
  [[nodiscard]] Result<Operation> BeginCreate(const CreateRequest& request);
  [[nodiscard]] Result<Operation> BeginStateChange(const std::string& name,
                                                   StateAction action,
                                                   bool force, int timeout_s);
  // Refused while running unless force (which kills it first).
  [[nodiscard]] Result<Operation> BeginDelete(const std::string& name,
                                              bool force);
  // Detaches the instance's ISO (live if running, and from its config).
  [[nodiscard]] Result<Operation> BeginEject(const std::string& name);
  // Path of the serial log and socket, for consoles.
  [[nodiscard]] Result<VmPaths> Paths(const std::string& name);
  // The current screen as PNG bytes; kFailedPrecondition unless the VM runs
  // (or is paused).
  [[nodiscard]] Result<std::string> Screenshot(const std::string& name);
  Json HostResources();
  // state_dir/<id> for an instance id (not created).
  [[nodiscard]] std::string StateDir(const std::string& instance_id) const;
  // The lock every change to one instance holds (lifecycle actions, volume
  // attach/detach).
  [[nodiscard]] std::unique_lock<std::mutex> LockInstance(
      const std::string& name);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vireo
