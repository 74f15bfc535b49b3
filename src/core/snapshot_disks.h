#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "core/instance.h"
#include "core/snapshot_records.h"
#include "core/vm_engine.h"

namespace vireo {

// A disk a snapshot covers, with its QEMU block node when the VM runs.
struct SnapshotTarget {
  std::string disk;  // DiskConfig::name
  std::string path;
  std::string node;  // qcow2 format node name (running VMs only)
};

// The qcow2 internal-snapshot mechanics of one instance's disks: QMP on a
// running VM (QEMU owns the files then), qemu-img on a stopped one. Knows
// nothing about records or the tree.
class SnapshotDisks {
 public:
  SnapshotDisks(VmEngine* engine, std::string instance)
      : engine_(engine), instance_(std::move(instance)) {}

  // The writable disks of `inst`. Any writable non-qcow2 disk (raw file,
  // LVM-thin volume) is kFailedPrecondition: qcow2 alone can hold internal
  // snapshots. No disk at all is kFailedPrecondition too.
  [[nodiscard]] static Result<std::vector<SnapshotTarget>> Targets(
      const Instance& inst);
  // Fills SnapshotTarget::node from query-named-block-nodes.
  [[nodiscard]] Status ResolveNodes(std::vector<SnapshotTarget>* targets);

  // Running VM, disk only: one QMP transaction over all disks, so they are
  // consistent with each other.
  [[nodiscard]] Status CreateLive(const std::vector<SnapshotTarget>& targets,
                                  const std::string& tag);
  // Running VM: snapshot-save / snapshot-load jobs (RAM + devices + disks;
  // the VM state goes into the first disk).
  [[nodiscard]] Status SaveMemory(const std::vector<SnapshotTarget>& targets,
                                  const std::string& tag);
  [[nodiscard]] Status LoadMemory(const std::vector<SnapshotTarget>& targets,
                                  const std::string& tag);
  [[nodiscard]] Status DeleteLive(const std::vector<SnapshotTarget>& targets,
                                  const std::string& tag);

  // Stopped VM: qemu-img snapshot -c / -a / -d on every disk.
  [[nodiscard]] static Status CreateOffline(
      const std::vector<SnapshotTarget>& targets, const std::string& tag);
  [[nodiscard]] static Status ApplyOffline(
      const std::vector<SnapshotTarget>& targets, const std::string& tag);
  [[nodiscard]] static Status DeleteOffline(
      const std::vector<SnapshotTarget>& targets, const std::string& tag);

  // Per-disk sizes of snapshot `tag` from `qemu-img info -U`.
  [[nodiscard]] static std::vector<SnapshotDisk> Sizes(
      const std::vector<SnapshotTarget>& targets, const std::string& tag);

 private:
  [[nodiscard]] Status RunJob(const std::string& command, Json arguments);

  VmEngine* engine_;
  std::string instance_;
};

}  // namespace vireo
