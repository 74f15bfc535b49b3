#include "core/instance_service.h"

#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/random.h"
#include "core/install_media.h"
#include "core/instance_lifecycle.h"
#include "core/instance_options.h"
#include "core/launch_disks.h"
#include "core/network_attacher.h"
#include "core/snapshot_records.h"
#include "core/validation.h"

namespace vireo {

namespace {

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

Json InstanceResources(const std::string& name) {
  return {{"instances", Json::array({"/1.0/instances/" + name})}};
}

}  // namespace

Result<StateAction> ParseStateAction(std::string_view text) {
  if (text == "start") return StateAction::kStart;
  if (text == "stop") return StateAction::kStop;
  if (text == "restart") return StateAction::kRestart;
  if (text == "pause" || text == "freeze") return StateAction::kPause;
  if (text == "resume" || text == "unfreeze") return StateAction::kResume;
  return Err(ErrorCode::kInvalidArgument,
             "unknown action '" + std::string(text) +
                 "' (expected start, stop, restart, pause or resume)");
}

class InstanceService::Impl {
 public:
  Impl(Store* store, VmEngine* engine, VolumePool* pool, EventBus* events,
       OperationManager* ops, ResourceTracker* resources, Options options)
      : lifecycle_(store, engine, events, resources, options.stop_timeout_s),
        state_dir_(options.state_dir),
        images_(options.images),
        networks_(options.networks),
        find_pool_(options.find_pool),
        store_(store),
        engine_(engine),
        pool_(pool),
        ops_(ops),
        events_(events),
        resources_(resources) {
    lifecycle_.SetNetworks(networks_);
    engine_->SetEventSink(
        [this](const VmEvent& e) { lifecycle_.OnEngineEvent(e, ops_); });
  }

  std::string StateDir(const std::string& id) const {
    return state_dir_.empty() ? std::string() : state_dir_ + "/" + id;
  }
  void RemoveStateDir(const std::string& id) {
    if (state_dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(StateDir(id), ec);
    if (ec) LOG_WARN("removing {}: {}", StateDir(id), ec.message());
  }

  InstanceLifecycle lifecycle_;
  std::string state_dir_;
  ImageService* images_;
  NetworkAttacher* networks_;
  std::function<Result<VolumePool*>(const std::string&, uint64_t)> find_pool_;
  Store* store_;
  VmEngine* engine_;
  VolumePool* pool_;
  OperationManager* ops_;
  EventBus* events_;
  ResourceTracker* resources_;

  Result<VolumePool*> PoolFor(const std::string& name, uint64_t size) {
    if (name.empty()) return pool_;
    if (!find_pool_)
      return Err(ErrorCode::kNotFound, "storage pool '" + name + "' not found");
    return find_pool_(name, size);
  }

  Result<Json> CreateWork(CreateRequest request, std::vector<NicConfig> nics) {
    Instance inst;
    inst.id = RandomHex(8);
    inst.created_at = Now();
    InstanceConfig& c = inst.config;
    c.name = request.name;
    c.cpus = request.cpus;
    c.memory_bytes = request.memory_bytes;
    c.kernel = request.kernel;
    c.initrd = request.initrd;
    c.cmdline = request.cmdline;
    c.restart_policy = request.restart_policy;
    c.firmware = request.firmware;
    c.os_type = request.os_type;
    c.nics = std::move(nics);
    // Disks first, record last: a failure anywhere removes what was made, and
    // nobody ever sees a half-created instance.
    std::vector<VolumePool*> used_pools = {pool_};
    auto cleanup = [&] {
      for (VolumePool* p : used_pools) (void)p->DeleteOwner(inst.id);
      RemoveStateDir(inst.id);
    };
    auto launch =
        MakeLaunchDisks(images_, pool_, request, inst.id, StateDir(inst.id));
    if (!launch) {
      cleanup();
      return tl::unexpected(launch.error());
    }
    c.disks = launch->first;
    for (size_t i = 0; i < request.disks.size(); ++i) {
      const auto& d = request.disks[i];
      DiskConfig disk;
      disk.name = "disk" + std::to_string(i);
      disk.source = d.source;
      auto named = PoolFor(d.pool, d.size_bytes);
      if (!named) {
        cleanup();
        return tl::unexpected(named.error());
      }
      VolumePool* pool = *named;
      if (pool != pool_) {
        disk.pool = d.pool;
        disk.format = pool->volume_format();
        used_pools.push_back(pool);
      }
      Result<std::string> path =
          d.source.empty()
              ? pool->CreateVolume(inst.id, disk.name, d.size_bytes)
              : pool->CreateVolumeFrom(inst.id, disk.name, d.source,
                                       d.size_bytes);
      if (!path) {
        cleanup();
        Error e = path.error();
        e.WithContext("create " + disk.name);
        return tl::unexpected(e);
      }
      disk.path = *path;
      auto info = ProbeImage(disk.path);
      disk.size_bytes = info ? info->virtual_size : d.size_bytes;
      c.disks.push_back(std::move(disk));
    }
    c.disks.insert(c.disks.end(), launch->last.begin(), launch->last.end());
    if (auto st = AddInstallMedia(store_, request, StateDir(inst.id), &c);
        !st) {
      cleanup();
      return tl::unexpected(st.error());
    }
    if (auto st = store_->CreateInstance(inst); !st) {
      cleanup();
      return tl::unexpected(st.error());
    }
    events_->Lifecycle("instance-created", c.name);
    if (request.start) {
      TRY_CTX(lifecycle_.Apply(c.name, StateAction::kStart, false, 0),
              "instance '" + c.name + "' was created but did not start");
      ASSIGN_OR_RETURN(inst, store_->GetInstance(c.name));
    }
    return ToJson(inst);
  }

  Result<Json> DeleteWork(const std::string& name, bool force) {
    auto guard = lifecycle_.Lock(name);
    ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(name));
    if (HoldsResources(inst.status.state) || engine_->IsRunning(name)) {
      if (!force)
        return Err(ErrorCode::kFailedPrecondition,
                   "instance '" + name + "' is " +
                       std::string(ToString(inst.status.state)) +
                       "; stop it first or use --force");
      inst.status.stop_requested = true;
      TRY(store_->UpdateInstance(inst));
      TRY(engine_->Kill(name));
    }
    TRY(pool_->DeleteOwner(inst.id));
    // Disks made in other pools for this instance (not attached volumes).
    for (const DiskConfig& d : inst.config.disks) {
      if (d.pool.empty() || !d.volume.empty()) continue;
      if (auto p = PoolFor(d.pool, 0)) TRY((*p)->DeleteOwner(inst.id));
    }
    RemoveStateDir(inst.id);
    TRY(store_->DeleteInstance(name));
    // The disks held the snapshots; their records go with them.
    if (auto st = DeleteSnapshotRecords(store_, inst.id); !st)
      LOG_WARN("{}: deleting snapshot records: {}", name,
               st.error().ToString());
    std::error_code ec;
    std::filesystem::remove_all(engine_->PathsFor(inst).dir, ec);
    events_->Lifecycle("instance-deleted", name);
    return Json::object();
  }
};

InstanceService::InstanceService(Store* store, VmEngine* engine,
                                 VolumePool* pool, EventBus* events,
                                 OperationManager* ops,
                                 ResourceTracker* resources, Options options)
    : impl_(std::make_unique<Impl>(store, engine, pool, events, ops, resources,
                                   options)) {}

InstanceService::~InstanceService() = default;

void InstanceService::Recover() { impl_->lifecycle_.Recover(); }

Result<std::vector<Instance>> InstanceService::List() {
  return impl_->store_->ListInstances();
}

Result<std::vector<std::string>> InstanceService::ListNames() {
  return impl_->store_->ListInstanceNames();
}

Result<Instance> InstanceService::Get(const std::string& name) {
  TRY(ValidateInstanceName(name));
  return impl_->store_->GetInstance(name);
}

Result<Operation> InstanceService::BeginCreate(const CreateRequest& request) {
  TRY(ValidateCreateRequest(request));
  TRY(CheckLaunchRequest(impl_->images_, request));
  TRY(ValidateInstallMedia(impl_->store_, request));
  InstanceConfig probe;
  probe.name = request.name;
  probe.cpus = request.cpus;
  probe.memory_bytes = request.memory_bytes;
  TRY(impl_->resources_->CheckFits(probe));
  for (const auto& d : request.disks) TRY(impl_->PoolFor(d.pool, d.size_bytes));
  auto existing = impl_->store_->GetInstance(request.name);
  if (existing)
    return Err(ErrorCode::kAlreadyExists,
               "instance '" + request.name + "' already exists");
  if (existing.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(existing.error());
  NetworkAttacher* networks = impl_->networks_;
  std::vector<NicConfig> nics =
      BuildNics(request, networks ? networks->DefaultNetwork() : "");
  if (networks) {
    TRY(networks->CheckNics(nics));
  } else if (!request.networks.empty()) {
    return Err(ErrorCode::kFailedPrecondition,
               "managed networks are not available on this server");
  }
  return impl_->ops_->Start(
      "Creating instance", InstanceResources(request.name),
      [this, request, nics] { return impl_->CreateWork(request, nics); });
}

Result<Operation> InstanceService::BeginStateChange(const std::string& name,
                                                    StateAction action,
                                                    bool force, int timeout_s) {
  ASSIGN_OR_RETURN(Instance inst, Get(name));
  // Refuse illegal transitions now, so the caller gets a 409 rather than a
  // failed operation; the operation re-checks under the instance lock.
  TRY(InstanceLifecycle::CheckTransition(inst, action));
  static constexpr const char* kDescriptions[] = {
      "Starting instance", "Stopping instance", "Restarting instance",
      "Pausing instance", "Resuming instance"};
  auto* lc = &impl_->lifecycle_;
  return impl_->ops_->Start(
      kDescriptions[static_cast<int>(action)], InstanceResources(name),
      [lc, name, action, force, timeout_s]() -> Result<Json> {
        return lc->Apply(name, action, force, timeout_s);
      });
}

Result<Operation> InstanceService::BeginDelete(const std::string& name,
                                               bool force) {
  ASSIGN_OR_RETURN(Instance inst, Get(name));
  if (HoldsResources(inst.status.state) && !force)
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + name + "' is " +
                   std::string(ToString(inst.status.state)) +
                   "; stop it first or use --force");
  return impl_->ops_->Start(
      "Deleting instance", InstanceResources(name),
      [this, name, force] { return impl_->DeleteWork(name, force); });
}

Result<Operation> InstanceService::BeginEject(const std::string& name) {
  ASSIGN_OR_RETURN(Instance inst, Get(name));
  (void)inst;
  return impl_->ops_->Start(
      "Ejecting ISO", InstanceResources(name), [this, name]() -> Result<Json> {
        auto guard = impl_->lifecycle_.Lock(name);
        return EjectMedia(impl_->store_, impl_->engine_, name);
      });
}

Result<VmPaths> InstanceService::Paths(const std::string& name) {
  ASSIGN_OR_RETURN(Instance inst, Get(name));
  return impl_->engine_->PathsFor(inst);
}

Result<std::string> InstanceService::Screenshot(const std::string& name) {
  ASSIGN_OR_RETURN(Instance inst, Get(name));
  const InstanceState state = inst.status.state;
  if (state != InstanceState::kRunning && state != InstanceState::kPaused) {
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + name + "' is not running (state " +
                   std::string(ToString(state)) + ")");
  }
  return impl_->engine_->Screenshot(name);
}

Json InstanceService::HostResources() {
  auto all = impl_->store_->ListInstances();
  Json j = impl_->resources_->Describe(all ? *all : std::vector<Instance>{});
  j["accelerator"] = impl_->engine_->Accelerator();
  j["accelerator_reason"] = impl_->engine_->AcceleratorReason();
  Json storage = Json::array();
  if (auto usage = impl_->pool_->Usage()) storage.push_back(*usage);
  j["storage"] = storage;
  return j;
}

std::string InstanceService::StateDir(const std::string& instance_id) const {
  return impl_->StateDir(instance_id);
}

std::unique_lock<std::mutex> InstanceService::LockInstance(
    const std::string& name) {
  return impl_->lifecycle_.Lock(name);
}

Result<Json> InstanceService::ApplyStateChange(const std::string& name,
                                               StateAction action, bool force,
                                               int timeout_s) {
  return impl_->lifecycle_.Apply(name, action, force, timeout_s);
}

Result<Instance> InstanceService::PatchOptions(
    const std::string& name, const std::map<std::string, std::string>& patch) {
  TRY(ValidateInstanceName(name));
  auto guard = impl_->lifecycle_.Lock(name);
  ASSIGN_OR_RETURN(Instance inst, impl_->store_->GetInstance(name));
  TRY(ApplyOptionsPatch(patch, &inst.config.options));
  TRY(impl_->store_->UpdateInstance(inst));
  impl_->events_->Lifecycle("instance-updated", name);
  return inst;
}

Status InstanceService::AddInstance(const Instance& instance) {
  TRY(impl_->store_->CreateInstance(instance));
  impl_->events_->Lifecycle("instance-created", instance.name());
  return Ok();
}

VolumePool* InstanceService::DefaultPool() { return impl_->pool_; }

}  // namespace vireo
