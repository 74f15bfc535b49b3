#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/events.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/snapshot_records.h"
#include "core/vm_engine.h"
#include "store/store.h"

namespace vireo {

// Instance snapshots as qcow2 internal snapshots (docs/snapshots.md), their
// tree of records, restore, delete, and copies of an instance.
// Synchronous checks fail fast (404/409/400); the slow parts are operations.
class SnapshotService {
 public:
  SnapshotService(Store* store, InstanceService* instances, VmEngine* engine,
                  OperationManager* ops, EventBus* events);

  // Records in creation order, plus the current snapshot name.
  struct Listing {
    std::vector<SnapshotRecord> snapshots;
    std::string current;
  };
  [[nodiscard]] Result<Listing> List(const std::string& instance);
  [[nodiscard]] Result<SnapshotRecord> Get(const std::string& instance,
                                           const std::string& snapshot);

  [[nodiscard]] Result<Operation> BeginCreate(const std::string& instance,
                                              const std::string& snapshot,
                                              bool memory);
  // Without confirm: kFailedPrecondition (later state would be discarded).
  [[nodiscard]] Result<Operation> BeginRestore(const std::string& instance,
                                               const std::string& snapshot,
                                               bool confirm);
  [[nodiscard]] Result<Operation> BeginDelete(const std::string& instance,
                                              const std::string& snapshot);
  // A new instance `new_name` with copies of the disks (of `snapshot`, or the
  // current state when empty) and a new id and MACs.
  [[nodiscard]] Result<Operation> BeginCopy(const std::string& instance,
                                            const std::string& snapshot,
                                            const std::string& new_name);

  // The synchronous bodies (the scheduler calls these on its own thread).
  [[nodiscard]] Result<SnapshotRecord> Create(const std::string& instance,
                                              const std::string& snapshot,
                                              bool memory);
  [[nodiscard]] Status Delete(const std::string& instance,
                              const std::string& snapshot);

 private:
  Status CheckCreate(const Instance& inst, const std::string& snapshot,
                     bool memory);
  Result<Json> Restore(const std::string& instance,
                       const std::string& snapshot);
  void AwaitResumeRecorded(const std::string& instance);
  Result<Json> Copy(const std::string& instance, const std::string& snapshot,
                    const std::string& new_name);

  Store* store_;
  InstanceService* instances_;
  VmEngine* engine_;
  OperationManager* ops_;
  EventBus* events_;
};

Json ToApiJson(const SnapshotRecord& record, const std::string& current);
// Snapshot names follow instance-name rules (they become qcow2 tags).
[[nodiscard]] Status ValidateSnapshotName(const std::string& name);

}  // namespace vireo
