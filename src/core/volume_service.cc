#include "core/volume_service.h"

#include <pwd.h>
#include <unistd.h>

#include <ctime>

#include "common/log.h"
#include "core/disk_hotplug.h"
#include "core/validation.h"

namespace vireo {

namespace {

constexpr const char* kKind = "volume";
// Standalone volumes live under this owner in their pool, apart from the
// per-instance owners (16 hex digits) that instance deletion removes.
constexpr const char* kOwner = "volumes";

std::string PoolName(const std::string& pool) {
  return pool.empty() ? StorageService::kDefaultPool : pool;
}

std::string Key(const std::string& pool, const std::string& name) {
  return PoolName(pool) + "/" + name;
}

Json Resources(const std::string& pool, const std::string& name,
               const std::string& instance) {
  Json r = {
      {"storage_volumes", Json::array({"/1.0/storage-pools/" + PoolName(pool) +
                                       "/volumes/" + name})}};
  if (!instance.empty())
    r["instances"] = Json::array({"/1.0/instances/" + instance});
  return r;
}

Status CheckSize(uint64_t size) {
  if (size < kMinDiskSize || size > kMaxDiskSize)
    return Err(ErrorCode::kInvalidArgument,
               "volume size must be between 1 MiB and 64 TiB");
  return Ok();
}

}  // namespace

Json ToJson(const Volume& v) {
  return {{"pool", v.pool},
          {"name", v.name},
          {"path", v.path},
          {"format", v.format},
          {"size_bytes", v.size_bytes},
          {"attached_to", v.attached_to},
          {"created_at", v.created_at}};
}

Result<Volume> VolumeFromJson(const Json& j) {
  try {
    Volume v;
    v.pool = j.at("pool").get<std::string>();
    v.name = j.at("name").get<std::string>();
    v.path = j.at("path").get<std::string>();
    v.format = j.value("format", "qcow2");
    v.size_bytes = j.value("size_bytes", uint64_t{0});
    v.attached_to = j.value("attached_to", "");
    v.created_at = j.value("created_at", int64_t{0});
    return v;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("bad volume record: ") + e.what());
  }
}

VolumeService::VolumeService(Store* store, StorageService* pools,
                             InstanceService* instances, VmEngine* engine,
                             OperationManager* ops, Options options)
    : store_(store),
      pools_(pools),
      instances_(instances),
      engine_(engine),
      ops_(ops),
      options_(std::move(options)) {}

Result<Volume> VolumeService::Load(const std::string& pool,
                                   const std::string& name) {
  TRY(ValidateStorageName("volume name", name));
  TRY(pools_->Find(pool));
  auto record = store_->GetObject(kKind, Key(pool, name));
  if (!record) {
    if (record.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound,
                 "volume '" + Key(pool, name) + "' not found");
    return tl::unexpected(record.error());
  }
  return VolumeFromJson(*record);
}

std::string VolumeService::Holder(const Volume& volume) {
  if (volume.attached_to.empty()) return "";
  auto inst = store_->GetInstance(volume.attached_to);
  if (!inst) return "";
  for (const DiskConfig& d : inst->config.disks) {
    if (d.path == volume.path) return volume.attached_to;
  }
  return "";
}

Status VolumeService::CheckAttach(const Volume& v,
                                  const std::string& instance) {
  std::string holder = Holder(v);
  if (holder == instance)
    return Err(ErrorCode::kFailedPrecondition,
               "volume '" + Key(v.pool, v.name) + "' is already attached to '" +
                   instance + "'");
  if (!holder.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "volume '" + Key(v.pool, v.name) + "' is attached to '" +
                   holder +
                   "'; detach it first (a volume belongs to one instance "
                   "at a time)");
  return Ok();
}

Status VolumeService::CheckDetach(const Volume& v,
                                  const std::string& instance) {
  if (Holder(v) != instance)
    return Err(ErrorCode::kFailedPrecondition,
               "volume '" + Key(v.pool, v.name) + "' is not attached to '" +
                   instance + "'");
  return Ok();
}

Result<bool> VolumeService::IsLive(const Instance& inst) {
  switch (inst.status.state) {
    case InstanceState::kRunning:
      if (!engine_->IsRunning(inst.name()))
        return Err(ErrorCode::kFailedPrecondition,
                   "instance '" + inst.name() + "' is not reachable");
      return true;
    case InstanceState::kStopped:
    case InstanceState::kError:
      if (engine_->IsRunning(inst.name()))
        return Err(ErrorCode::kFailedPrecondition,
                   "instance '" + inst.name() + "' is still shutting down");
      return false;
    default:
      return Err(ErrorCode::kFailedPrecondition,
                 "instance '" + inst.name() + "' is " +
                     std::string(ToString(inst.status.state)) +
                     "; attach and detach work on running or stopped "
                     "instances");
  }
}

void VolumeService::GiveToQemu(const std::string& path) {
  // QEMU opened its boot disks before dropping privileges; a hot-plugged
  // volume is opened afterwards, as QEMU's own user.
  if (options_.qemu_user.empty()) return;
  struct passwd* pw = ::getpwnam(options_.qemu_user.c_str());
  if (!pw) return;
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    LOG_WARN("chown {} to {}: {}", path, options_.qemu_user,
             std::strerror(errno));
}

Result<Json> VolumeService::Create(const std::string& pool_name,
                                   const std::string& name, uint64_t size) {
  TRY(ValidateStorageName("volume name", name));
  TRY(CheckSize(size));
  ASSIGN_OR_RETURN(VolumePool * pool, pools_->Find(pool_name));
  std::lock_guard lock(mu_);
  std::string key = Key(pool_name, name);
  if (store_->GetObject(kKind, key))
    return Err(ErrorCode::kAlreadyExists,
               "volume '" + key + "' already exists");
  TRY(pools_->CheckQuota(PoolName(pool_name), size));
  ASSIGN_OR_RETURN(std::string path, pool->CreateVolume(kOwner, name, size));
  Volume v;
  v.pool = PoolName(pool_name);
  v.name = name;
  v.path = path;
  v.format = pool->volume_format();
  auto info = ProbeImage(path);
  v.size_bytes = info ? info->virtual_size : size;
  v.created_at = static_cast<int64_t>(::time(nullptr));
  if (auto st = store_->CreateObject(kKind, key, ToJson(v)); !st) {
    (void)pool->DeleteVolume(path);
    return tl::unexpected(st.error());
  }
  LOG_INFO("volume {} created ({} bytes)", key, v.size_bytes);
  return ToJson(v);
}

Result<std::vector<Json>> VolumeService::List(const std::string& pool) {
  if (!pool.empty()) TRY(pools_->Find(pool));
  ASSIGN_OR_RETURN(std::vector<Json> records, store_->ListObjects(kKind));
  std::vector<Json> out;
  for (const Json& r : records) {
    ASSIGN_OR_RETURN(Volume v, VolumeFromJson(r));
    if (!pool.empty() && v.pool != pool) continue;
    v.attached_to = Holder(v);
    out.push_back(ToJson(v));
  }
  return out;
}

Result<Json> VolumeService::Get(const std::string& pool,
                                const std::string& name) {
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  v.attached_to = Holder(v);
  return ToJson(v);
}

Status VolumeService::Delete(const std::string& pool_name,
                             const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Volume v, Load(pool_name, name));
  if (std::string holder = Holder(v); !holder.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "volume '" + Key(v.pool, v.name) + "' is in use by '" + holder +
                   "'; detach it first");
  ASSIGN_OR_RETURN(VolumePool * pool, pools_->Find(v.pool));
  TRY(pool->DeleteVolume(v.path));
  TRY(store_->DeleteObject(kKind, Key(v.pool, v.name)));
  LOG_INFO("volume {} deleted", Key(v.pool, v.name));
  return Ok();
}

Result<Operation> VolumeService::BeginAttach(const std::string& pool,
                                             const std::string& name,
                                             const std::string& instance) {
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckAttach(v, instance));
  TRY(IsLive(inst));
  return ops_->Start(
      "Attaching volume", Resources(pool, name, instance),
      [this, pool, name, instance] { return Attach(pool, name, instance); });
}

Result<Operation> VolumeService::BeginDetach(const std::string& pool,
                                             const std::string& name,
                                             const std::string& instance) {
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckDetach(v, instance));
  TRY(IsLive(inst));
  return ops_->Start(
      "Detaching volume", Resources(pool, name, instance),
      [this, pool, name, instance] { return Detach(pool, name, instance); });
}

Result<Operation> VolumeService::BeginResize(const std::string& pool,
                                             const std::string& name,
                                             uint64_t new_size) {
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  TRY(CheckSize(new_size));
  if (new_size < v.size_bytes)
    return Err(ErrorCode::kInvalidArgument,
               "volume '" + Key(v.pool, v.name) + "' is " +
                   std::to_string(v.size_bytes) + " bytes; shrinking to " +
                   std::to_string(new_size) +
                   " is refused (data would be lost)");
  TRY(pools_->CheckQuota(v.pool, new_size - v.size_bytes));
  return ops_->Start(
      "Resizing volume", Resources(pool, name, Holder(v)),
      [this, pool, name, new_size] { return Resize(pool, name, new_size); });
}

Result<Json> VolumeService::Attach(const std::string& pool,
                                   const std::string& name,
                                   const std::string& instance) {
  auto instance_guard = instances_->LockInstance(instance);
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  TRY(CheckAttach(v, instance));
  ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(instance));
  if (inst.config.disks.size() >= kMaxDisks)
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + instance + "' already has " +
                   std::to_string(kMaxDisks) + " disks");
  for (const DiskConfig& d : inst.config.disks) {
    if (d.name == v.name)
      return Err(ErrorCode::kAlreadyExists, "instance '" + instance +
                                                "' already has a disk named '" +
                                                v.name + "'");
    if (d.path == v.path)
      return Err(ErrorCode::kFailedPrecondition,
                 "volume '" + Key(v.pool, v.name) +
                     "' is already attached to '" + instance + "'");
  }
  ASSIGN_OR_RETURN(bool live, IsLive(inst));
  DiskConfig disk;
  disk.name = v.name;
  disk.path = v.path;
  disk.size_bytes = v.size_bytes;
  disk.format = v.format;
  disk.pool = v.pool;
  disk.volume = v.name;
  DiskHotplug hotplug(engine_, instance);
  if (live) {
    GiveToQemu(v.path);
    TRY(hotplug.Plug(disk));
  }
  inst.config.disks.push_back(disk);
  if (auto st = store_->UpdateInstance(inst); !st) {
    if (live) (void)hotplug.Unplug(v.path, options_.unplug_timeout);
    return tl::unexpected(st.error());
  }
  v.attached_to = instance;
  TRY(store_->UpdateObject(kKind, Key(v.pool, v.name), ToJson(v)));
  LOG_INFO("volume {} attached to {}{}", Key(v.pool, v.name), instance,
           live ? " (hot-plug)" : "");
  Json out = ToJson(v);
  out["hotplug"] = live;
  return out;
}

Result<Json> VolumeService::Detach(const std::string& pool,
                                   const std::string& name,
                                   const std::string& instance) {
  auto instance_guard = instances_->LockInstance(instance);
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  TRY(CheckDetach(v, instance));
  ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(instance));
  ASSIGN_OR_RETURN(bool live, IsLive(inst));
  if (live) {
    DiskHotplug hotplug(engine_, instance);
    ASSIGN_OR_RETURN(bool plugged, hotplug.Attached(v.path));
    if (plugged) TRY(hotplug.Unplug(v.path, options_.unplug_timeout));
  }
  auto& disks = inst.config.disks;
  std::erase_if(disks, [&](const DiskConfig& d) { return d.path == v.path; });
  TRY(store_->UpdateInstance(inst));
  v.attached_to.clear();
  TRY(store_->UpdateObject(kKind, Key(v.pool, v.name), ToJson(v)));
  LOG_INFO("volume {} detached from {}{}", Key(v.pool, v.name), instance,
           live ? " (hot-unplug)" : "");
  Json out = ToJson(v);
  out["hotplug"] = live;
  return out;
}

Result<Json> VolumeService::Resize(const std::string& pool,
                                   const std::string& name, uint64_t new_size) {
  // The holder's lock comes before ours; take it, then check it is still
  // the holder.
  ASSIGN_OR_RETURN(Volume peek, Load(pool, name));
  std::string holder = Holder(peek);
  std::unique_lock<std::mutex> instance_guard;
  if (!holder.empty()) instance_guard = instances_->LockInstance(holder);
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Volume v, Load(pool, name));
  if (Holder(v) != holder)
    return Err(ErrorCode::kFailedPrecondition,
               "volume '" + Key(v.pool, v.name) + "' changed meanwhile; retry");
  if (new_size < v.size_bytes)
    return Err(ErrorCode::kInvalidArgument,
               "volume '" + Key(v.pool, v.name) + "' is " +
                   std::to_string(v.size_bytes) + " bytes; shrinking to " +
                   std::to_string(new_size) +
                   " is refused (data would be lost)");
  TRY(pools_->CheckQuota(v.pool, new_size - v.size_bytes));
  ASSIGN_OR_RETURN(VolumePool * vp, pools_->Find(v.pool));
  std::optional<Instance> inst;
  bool live = false;
  if (!holder.empty()) {
    ASSIGN_OR_RETURN(inst, store_->GetInstance(holder));
    ASSIGN_OR_RETURN(live, IsLive(*inst));
  }
  if (live) {
    // A raw device grows underneath first; a qcow2 file is grown by QEMU,
    // which holds its lock.
    if (v.format == "raw") TRY(vp->ResizeVolume(v.path, new_size));
    TRY(DiskHotplug(engine_, holder).Resize(v.path, new_size));
    v.size_bytes = (new_size + 511) / 512 * 512;
  } else {
    TRY(vp->ResizeVolume(v.path, new_size));
    auto info = ProbeImage(v.path);
    v.size_bytes = info ? info->virtual_size : new_size;
  }
  TRY(store_->UpdateObject(kKind, Key(v.pool, v.name), ToJson(v)));
  if (inst) {
    for (DiskConfig& d : inst->config.disks)
      if (d.path == v.path) d.size_bytes = v.size_bytes;
    TRY(store_->UpdateInstance(*inst));
  }
  LOG_INFO("volume {} grown to {} bytes{}", Key(v.pool, v.name), v.size_bytes,
           live ? " (online)" : "");
  Json out = ToJson(v);
  out["online"] = live;
  return out;
}

}  // namespace vireo
