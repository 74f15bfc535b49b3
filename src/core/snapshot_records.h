#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "store/store.h"

namespace vireo {

// What one qcow2 internal snapshot holds on one disk.
struct SnapshotDisk {
  std::string disk;            // DiskConfig::name
  uint64_t virtual_size = 0;   // the disk's size when taken
  uint64_t vm_state_size = 0;  // RAM+device state (first disk, --memory)
};

// Metadata of an instance snapshot. The data itself lives inside the qcow2
// files (internal snapshots named `name` on every disk); this record adds
// what qcow2 does not keep: the tree and which disks belong together.
// Stored as kind "snapshot", key "<instance-id>/<name>".
struct SnapshotRecord {
  std::string instance_id;
  std::string name;
  std::string parent;  // the instance's current snapshot when taken; ""=root
  int64_t created_at = 0;  // unix seconds
  bool memory = false;     // holds the VM state (restore resumes the guest)
  std::vector<SnapshotDisk> disks;
};

Json ToJson(const SnapshotRecord& record);
Result<SnapshotRecord> SnapshotRecordFromJson(const Json& j);

// Re-parents the children of `removed` onto its parent, so the tree stays
// connected after a delete. Returns the records that changed.
std::vector<SnapshotRecord> ReparentChildren(std::vector<SnapshotRecord>& all,
                                             const SnapshotRecord& removed);

// Store access. The "current" pointer lives in kind "snapshot-head", key
// <instance-id>: {"current": name}.
[[nodiscard]] Result<std::vector<SnapshotRecord>> ListSnapshotRecords(
    Store* store, const std::string& instance_id);
[[nodiscard]] Result<std::string> CurrentSnapshot(
    Store* store, const std::string& instance_id);
[[nodiscard]] Status SetCurrentSnapshot(Store* store,
                                        const std::string& instance_id,
                                        const std::string& name);
// Removes every snapshot record and the head of an instance.
[[nodiscard]] Status DeleteSnapshotRecords(Store* store,
                                           const std::string& instance_id);
std::string SnapshotKey(const std::string& instance_id,
                        const std::string& name);

}  // namespace vireo
