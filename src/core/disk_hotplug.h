#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "core/instance.h"
#include "core/vm_engine.h"

namespace vireo {

// Block device hot-plug on a running VM, through QMP. Disks are found by
// their file path, so a disk plugged at boot (-blockdev on the command line)
// and one hot-plugged later are handled alike.
class DiskHotplug {
 public:
  // Free hot-plug root ports are hp0..hp<kPorts-1> (engine/qemu/command_line).
  static constexpr int kPorts = 4;

  DiskHotplug(VmEngine* engine, std::string instance)
      : engine_(engine), instance_(std::move(instance)) {}

  // blockdev-add (protocol + format node), then device_add virtio-blk-pci on
  // the first free hot-plug port. Nothing stays behind on failure.
  [[nodiscard]] Status Plug(const DiskConfig& disk);
  // device_del, waits until the guest released the device, then
  // blockdev-del of its nodes. kTimeout if the guest never lets go.
  [[nodiscard]] Status Unplug(const std::string& path,
                              std::chrono::seconds timeout);
  // block_resize of the disk's format node.
  [[nodiscard]] Status Resize(const std::string& path, uint64_t new_size);
  // True if a device of the VM uses the file.
  [[nodiscard]] Result<bool> Attached(const std::string& path);

 private:
  struct Found {
    std::string qdev;       // QOM path of the device's block backend
    std::string node_name;  // format node
  };
  Result<Found> Find(const std::string& path);
  Status DeleteNodes(const std::string& path);

  VmEngine* engine_;
  std::string instance_;
};

}  // namespace vireo
