#include "core/snapshot_service.h"

#include <chrono>
#include <ctime>
#include <thread>

#include "common/log.h"
#include "core/snapshot_disks.h"
#include "core/validation.h"

namespace vireo {

namespace {

constexpr const char* kKind = "snapshot";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

Json Resources(const std::string& instance) {
  return {{"instances", Json::array({"/1.0/instances/" + instance})}};
}

bool IsLive(InstanceState s) {
  return s == InstanceState::kRunning || s == InstanceState::kPaused;
}

// Starting/stopping VMs are mid-change: snapshot them once they settle.
Status CheckSettled(const Instance& inst) {
  InstanceState s = inst.status.state;
  if (s == InstanceState::kStarting || s == InstanceState::kStopping)
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + inst.name() + "' is " + std::string(ToString(s)) +
                   "; try again when it settles");
  return Ok();
}

// The snapshot's disks, located in the instance's current config.
Result<std::vector<SnapshotTarget>> RecordTargets(const Instance& inst,
                                                  const SnapshotRecord& rec) {
  std::vector<SnapshotTarget> out;
  for (const SnapshotDisk& sd : rec.disks) {
    const DiskConfig* found = nullptr;
    for (const DiskConfig& d : inst.config.disks)
      if (d.name == sd.disk) found = &d;
    if (!found)
      return Err(ErrorCode::kFailedPrecondition,
                 "snapshot '" + rec.name + "' holds disk '" + sd.disk +
                     "', which '" + inst.name() + "' no longer has");
    out.push_back({found->name, found->path, ""});
  }
  if (out.empty())
    return Err(ErrorCode::kInternal,
               "snapshot '" + rec.name + "' has no disks");
  return out;
}

}  // namespace

// snapshot-save/-load pause and resume the guest; the lifecycle hears STOP
// and RESUME on its reactor, which waits for the instance lock we held.
// Wait until it has caught up so callers never see a transient "paused".
void SnapshotService::AwaitResumeRecorded(const std::string& instance) {
  auto qemu = engine_->QueryStatus(instance);
  if (!qemu || *qemu != "running") return;
  for (int i = 0; i < 100; ++i) {
    auto inst = instances_->Get(instance);
    if (!inst || inst->status.state != InstanceState::kPaused) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status ValidateSnapshotName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Err(ErrorCode::kInvalidArgument,
               "invalid snapshot name '" + name + "': " + why);
  };
  if (name.empty()) return bad("must not be empty");
  if (name.size() > 63) return bad("longer than 63 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0])))
    return bad("must start with a letter or digit");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
          c == '.'))
      return bad("only letters, digits, '-', '_' and '.' are allowed");
  return Ok();
}

Json ToApiJson(const SnapshotRecord& r, const std::string& current) {
  Json j = ToJson(r);
  j.erase("instance_id");
  j["current"] = r.name == current;
  uint64_t vm_state = 0;
  for (const auto& d : r.disks) vm_state += d.vm_state_size;
  j["vm_state_size"] = vm_state;
  return j;
}

SnapshotService::SnapshotService(Store* store, InstanceService* instances,
                                 VmEngine* engine, OperationManager* ops,
                                 EventBus* events)
    : store_(store),
      instances_(instances),
      engine_(engine),
      ops_(ops),
      events_(events) {}

Result<SnapshotService::Listing> SnapshotService::List(
    const std::string& instance) {
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  Listing out;
  ASSIGN_OR_RETURN(out.snapshots, ListSnapshotRecords(store_, inst.id));
  ASSIGN_OR_RETURN(out.current, CurrentSnapshot(store_, inst.id));
  return out;
}

Result<SnapshotRecord> SnapshotService::Get(const std::string& instance,
                                            const std::string& snapshot) {
  TRY(ValidateSnapshotName(snapshot));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  auto doc = store_->GetObject(kKind, SnapshotKey(inst.id, snapshot));
  if (!doc) {
    if (doc.error().code() == ErrorCode::kNotFound)
      return Err(
          ErrorCode::kNotFound,
          "instance '" + instance + "' has no snapshot '" + snapshot + "'");
    return tl::unexpected(doc.error());
  }
  return SnapshotRecordFromJson(*doc);
}

Status SnapshotService::CheckCreate(const Instance& inst,
                                    const std::string& snapshot, bool memory) {
  TRY(ValidateSnapshotName(snapshot));
  TRY(CheckSettled(inst));
  TRY(SnapshotDisks::Targets(inst));
  if (memory && !IsLive(inst.status.state))
    return Err(ErrorCode::kFailedPrecondition,
               "a memory snapshot needs a running VM; '" + inst.name() +
                   "' is " + std::string(ToString(inst.status.state)) +
                   " (take a disk-only snapshot without --memory)");
  auto existing = store_->GetObject(kKind, SnapshotKey(inst.id, snapshot));
  if (existing)
    return Err(ErrorCode::kAlreadyExists, "instance '" + inst.name() +
                                              "' already has a snapshot '" +
                                              snapshot + "'");
  if (existing.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(existing.error());
  return Ok();
}

Result<Operation> SnapshotService::BeginCreate(const std::string& instance,
                                               const std::string& snapshot,
                                               bool memory) {
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckCreate(inst, snapshot, memory));
  return ops_->Start(memory ? "Creating memory snapshot" : "Creating snapshot",
                     Resources(instance),
                     [this, instance, snapshot, memory]() -> Result<Json> {
                       ASSIGN_OR_RETURN(SnapshotRecord r,
                                        Create(instance, snapshot, memory));
                       if (memory) AwaitResumeRecorded(instance);
                       return ToApiJson(r, r.name);
                     });
}

Result<SnapshotRecord> SnapshotService::Create(const std::string& instance,
                                               const std::string& snapshot,
                                               bool memory) {
  auto guard = instances_->LockInstance(instance);
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckCreate(inst, snapshot, memory));
  ASSIGN_OR_RETURN(auto targets, SnapshotDisks::Targets(inst));
  SnapshotDisks disks(engine_, instance);
  bool live = IsLive(inst.status.state) && engine_->IsRunning(instance);
  if (memory && !live)
    return Err(ErrorCode::kFailedPrecondition,
               "a memory snapshot needs a running VM");
  if (live) {
    TRY(disks.ResolveNodes(&targets));
    if (memory)
      TRY(disks.SaveMemory(targets, snapshot));
    else
      TRY(disks.CreateLive(targets, snapshot));
  } else {
    TRY(SnapshotDisks::CreateOffline(targets, snapshot));
  }
  SnapshotRecord r;
  r.instance_id = inst.id;
  r.name = snapshot;
  ASSIGN_OR_RETURN(r.parent, CurrentSnapshot(store_, inst.id));
  r.created_at = Now();
  r.memory = memory;
  r.disks = SnapshotDisks::Sizes(targets, snapshot);
  TRY(store_->CreateObject(kKind, SnapshotKey(inst.id, snapshot), ToJson(r)));
  TRY(SetCurrentSnapshot(store_, inst.id, snapshot));
  events_->Lifecycle("instance-snapshot-created", instance);
  LOG_INFO("{}: snapshot {} created ({})", instance, snapshot,
           memory ? "memory"
           : live ? "disk, live"
                  : "disk, offline");
  return r;
}

Result<Operation> SnapshotService::BeginRestore(const std::string& instance,
                                                const std::string& snapshot,
                                                bool confirm) {
  ASSIGN_OR_RETURN(SnapshotRecord rec, Get(instance, snapshot));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckSettled(inst));
  TRY(RecordTargets(inst, rec));
  if (!confirm)
    return Err(ErrorCode::kFailedPrecondition,
               "restoring snapshot '" + snapshot + "' discards the current " +
                   "state of '" + instance + "': everything written since " +
                   "(and a running VM's memory) is lost; confirm with " +
                   "{\"confirm\":true} (CLI: --yes)");
  return ops_->Start(
      "Restoring snapshot", Resources(instance),
      [this, instance, snapshot] { return Restore(instance, snapshot); });
}

Result<Json> SnapshotService::Restore(const std::string& instance,
                                      const std::string& snapshot) {
  ASSIGN_OR_RETURN(SnapshotRecord rec, Get(instance, snapshot));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckSettled(inst));
  bool live = IsLive(inst.status.state) && engine_->IsRunning(instance);
  SnapshotDisks disks(engine_, instance);
  if (rec.memory) {
    // The VM state only loads into a VM of the same config: start it first
    // when stopped; snapshot-load then replaces RAM, devices and disks.
    if (!live)
      TRY(instances_->ApplyStateChange(instance, StateAction::kStart, false,
                                       0));
    auto guard = instances_->LockInstance(instance);
    ASSIGN_OR_RETURN(inst, instances_->Get(instance));
    ASSIGN_OR_RETURN(auto targets, RecordTargets(inst, rec));
    TRY(disks.ResolveNodes(&targets));
    TRY(disks.LoadMemory(targets, snapshot));
    TRY(SetCurrentSnapshot(store_, inst.id, snapshot));
  } else {
    // A disk-only snapshot has no RAM to go with it: a running guest would
    // see its disks change underneath it, so it is stopped (forcefully: its
    // state is being discarded anyway), restored offline and started again.
    if (live)
      TRY(instances_->ApplyStateChange(instance, StateAction::kStop, true, 0));
    {
      auto guard = instances_->LockInstance(instance);
      ASSIGN_OR_RETURN(inst, instances_->Get(instance));
      if (IsLive(inst.status.state))
        return Err(ErrorCode::kFailedPrecondition,
                   "instance '" + instance + "' was started meanwhile");
      ASSIGN_OR_RETURN(auto targets, RecordTargets(inst, rec));
      TRY(SnapshotDisks::ApplyOffline(targets, snapshot));
      TRY(SetCurrentSnapshot(store_, inst.id, snapshot));
    }
    if (live)
      TRY(instances_->ApplyStateChange(instance, StateAction::kStart, false,
                                       0));
  }
  if (rec.memory) AwaitResumeRecorded(instance);
  events_->Lifecycle("instance-snapshot-restored", instance);
  LOG_INFO("{}: restored snapshot {}", instance, snapshot);
  return ToApiJson(rec, snapshot);
}

Result<Operation> SnapshotService::BeginDelete(const std::string& instance,
                                               const std::string& snapshot) {
  TRY(Get(instance, snapshot));
  return ops_->Start("Deleting snapshot", Resources(instance),
                     [this, instance, snapshot]() -> Result<Json> {
                       TRY(Delete(instance, snapshot));
                       return Json::object();
                     });
}

Status SnapshotService::Delete(const std::string& instance,
                               const std::string& snapshot) {
  auto guard = instances_->LockInstance(instance);
  ASSIGN_OR_RETURN(SnapshotRecord rec, Get(instance, snapshot));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckSettled(inst));
  // Disks removed since are simply skipped: their data went with them.
  std::vector<SnapshotTarget> targets;
  for (const SnapshotDisk& sd : rec.disks)
    for (const DiskConfig& d : inst.config.disks)
      if (d.name == sd.disk) targets.push_back({d.name, d.path, ""});
  if (!targets.empty()) {
    if (IsLive(inst.status.state) && engine_->IsRunning(instance)) {
      SnapshotDisks disks(engine_, instance);
      TRY(disks.ResolveNodes(&targets));
      TRY(disks.DeleteLive(targets, snapshot));
    } else {
      TRY(SnapshotDisks::DeleteOffline(targets, snapshot));
    }
  }
  // qcow2 snapshots are independent (refcounted clusters), so any node of
  // the tree can go; only our parent links need mending.
  ASSIGN_OR_RETURN(auto all, ListSnapshotRecords(store_, inst.id));
  for (const SnapshotRecord& child : ReparentChildren(all, rec))
    TRY(store_->UpdateObject(kKind, SnapshotKey(inst.id, child.name),
                             ToJson(child)));
  TRY(store_->DeleteObject(kKind, SnapshotKey(inst.id, snapshot)));
  ASSIGN_OR_RETURN(std::string current, CurrentSnapshot(store_, inst.id));
  if (current == snapshot) TRY(SetCurrentSnapshot(store_, inst.id, rec.parent));
  events_->Lifecycle("instance-snapshot-deleted", instance);
  return Ok();
}

}  // namespace vireo
