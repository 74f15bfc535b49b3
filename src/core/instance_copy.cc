// SnapshotService::BeginCopy: a new instance from another one's disks (its
// current state or one of its snapshots).
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/process.h"
#include "common/random.h"
#include "core/snapshot_disks.h"
#include "core/snapshot_service.h"
#include "core/validation.h"

namespace vireo {

namespace {

constexpr auto kConvertTimeout = std::chrono::seconds(3600);

std::string NewMac() {
  std::string hex = RandomHex(3);
  return "52:54:00:" + hex.substr(0, 2) + ":" + hex.substr(2, 2) + ":" +
         hex.substr(4, 2);
}

bool Under(const std::string& path, const std::string& dir) {
  return !dir.empty() && path.rfind(dir + "/", 0) == 0;
}

// Copies a per-instance file (seed ISO, UEFI variables) into the new
// instance's state dir.
Result<std::string> CopyStateFile(const std::string& from,
                                  const std::string& to_dir) {
  std::error_code ec;
  std::filesystem::create_directories(to_dir, ec);
  std::string to =
      to_dir + "/" + std::filesystem::path(from).filename().string();
  std::filesystem::copy_file(
      from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return Err(ErrorCode::kIo, "copy " + from + ": " + ec.message());
  return to;
}

}  // namespace

Result<Operation> SnapshotService::BeginCopy(const std::string& instance,
                                             const std::string& snapshot,
                                             const std::string& new_name) {
  TRY(ValidateInstanceName(new_name));
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  if (!snapshot.empty()) TRY(Get(instance, snapshot));
  TRY(SnapshotDisks::Targets(inst));
  auto existing = instances_->Get(new_name);
  if (existing)
    return Err(ErrorCode::kAlreadyExists,
               "instance '" + new_name + "' already exists");
  if (existing.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(existing.error());
  Json res = {{"instances", Json::array({"/1.0/instances/" + instance,
                                         "/1.0/instances/" + new_name})}};
  return ops_->Start("Copying instance", res,
                     [this, instance, snapshot, new_name] {
                       return Copy(instance, snapshot, new_name);
                     });
}

Result<Json> SnapshotService::Copy(const std::string& instance,
                                   const std::string& snapshot,
                                   const std::string& new_name) {
  std::string source_tag = snapshot;
  std::string temp_tag;  // a snapshot made for a running source
  Instance src;
  {
    auto guard = instances_->LockInstance(instance);
    ASSIGN_OR_RETURN(src, instances_->Get(instance));
    bool live = (src.status.state == InstanceState::kRunning ||
                 src.status.state == InstanceState::kPaused) &&
                engine_->IsRunning(instance);
    if (snapshot.empty() && live) {
      // A running VM's disks change under a plain copy: freeze a consistent
      // point as a temporary internal snapshot and copy that.
      temp_tag = "vireo-copy-" + RandomHex(4);
      ASSIGN_OR_RETURN(auto targets, SnapshotDisks::Targets(src));
      SnapshotDisks disks(engine_, instance);
      TRY(disks.ResolveNodes(&targets));
      TRY(disks.CreateLive(targets, temp_tag));
      source_tag = temp_tag;
    }
  }
  auto drop_temp = [&] {
    if (temp_tag.empty()) return;
    auto guard = instances_->LockInstance(instance);
    auto now = instances_->Get(instance);
    if (!now) return;
    auto targets = SnapshotDisks::Targets(*now);
    if (!targets) return;
    SnapshotDisks disks(engine_, instance);
    Status st = Ok();
    if (engine_->IsRunning(instance)) {
      st = disks.ResolveNodes(&*targets);
      if (st) st = disks.DeleteLive(*targets, temp_tag);
    } else {
      st = SnapshotDisks::DeleteOffline(*targets, temp_tag);
    }
    if (!st)
      LOG_WARN("{}: dropping {}: {}", instance, temp_tag,
               st.error().ToString());
  };

  Instance n;
  n.id = RandomHex(8);
  n.created_at = static_cast<int64_t>(::time(nullptr));
  n.config = src.config;
  n.config.name = new_name;
  for (NicConfig& nic : n.config.nics) {
    nic.mac = NewMac();
    nic.ip.clear();  // a static reservation belongs to the source
  }
  VolumePool* pool = instances_->DefaultPool();
  std::string src_state = instances_->StateDir(src.id);
  std::string new_state = instances_->StateDir(n.id);
  auto cleanup = [&] {
    (void)pool->DeleteOwner(n.id);
    std::error_code ec;
    if (!new_state.empty()) std::filesystem::remove_all(new_state, ec);
  };
  auto fail = [&](Error e) -> Result<Json> {
    cleanup();
    drop_temp();
    return tl::unexpected(std::move(e));
  };

  for (DiskConfig& d : n.config.disks) {
    if (d.media == "disk" && !d.readonly) {
      auto path = pool->CreateVolume(n.id, d.name, d.size_bytes);
      if (!path) return fail(path.error());
      std::vector<std::string> argv = {"qemu-img", "convert", "-q",
                                       "-U",       "-f",      "qcow2"};
      if (!source_tag.empty())
        argv.insert(argv.end(), {"-l", "snapshot.name=" + source_tag});
      argv.insert(argv.end(), {"-O", "qcow2", d.path, *path});
      if (auto st = RunCommandOk(argv, kConvertTimeout); !st) {
        Error e = st.error();
        e.WithContext("copy disk " + d.name);
        return fail(e);
      }
      d.path = *path;
      d.pool.clear();
      d.volume.clear();
      d.image.clear();  // the copy is flat: no backing file
      if (auto info = ProbeImage(d.path)) d.size_bytes = info->virtual_size;
    } else if (Under(d.path, src_state)) {
      auto to = CopyStateFile(d.path, new_state);
      if (!to) return fail(to.error());
      d.path = *to;
    }
  }
  if (Under(n.config.uefi_vars, src_state)) {
    auto to = CopyStateFile(n.config.uefi_vars, new_state);
    if (!to) return fail(to.error());
    n.config.uefi_vars = *to;
  }
  if (auto st = instances_->AddInstance(n); !st) return fail(st.error());
  drop_temp();
  LOG_INFO("{}: copied to {}{}", instance, new_name,
           snapshot.empty() ? "" : " from snapshot " + snapshot);
  return ToJson(n);
}

}  // namespace vireo
