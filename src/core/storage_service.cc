#include "core/storage_service.h"

#include <cctype>
#include <filesystem>

#include "common/log.h"
#include "storage/dir_pool.h"
#include "storage/lvm_thin_pool.h"

namespace vireo {

namespace {

constexpr const char* kKind = "storage_pool";

Result<std::unique_ptr<VolumePool>> Open(const PoolSpec& spec) {
  if (spec.type == "dir") {
    ASSIGN_OR_RETURN(auto pool, DirPool::Create(spec.name, spec.path));
    return std::unique_ptr<VolumePool>(std::move(pool));
  }
  if (spec.type == "lvm-thin") {
    ASSIGN_OR_RETURN(auto pool,
                     LvmThinPool::Create(spec.name, spec.vg, spec.thin_pool));
    return std::unique_ptr<VolumePool>(std::move(pool));
  }
  return Err(ErrorCode::kInvalidArgument, "unknown pool type '" + spec.type +
                                              "' (expected dir or lvm-thin)");
}

}  // namespace

Status ValidateStorageName(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 &&
            std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                c == '_' || c == '.');
  }
  if (!ok)
    return Err(ErrorCode::kInvalidArgument,
               "invalid " + what + " '" + name +
                   "': use 1-63 letters, digits, '-', '_' or '.', starting "
                   "with a letter or digit");
  return Ok();
}

Json ToJson(const PoolSpec& spec) {
  return {{"name", spec.name},           {"type", spec.type},
          {"path", spec.path},           {"vg", spec.vg},
          {"thin_pool", spec.thin_pool}, {"quota_bytes", spec.quota_bytes}};
}

Result<PoolSpec> PoolSpecFromJson(const Json& j) {
  try {
    PoolSpec s;
    s.name = j.at("name").get<std::string>();
    s.type = j.at("type").get<std::string>();
    s.path = j.value("path", "");
    s.vg = j.value("vg", "");
    s.thin_pool = j.value("thin_pool", "");
    s.quota_bytes = j.value("quota_bytes", uint64_t{0});
    return s;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("bad storage pool record: ") + e.what());
  }
}

StorageService::StorageService(Store* store, VolumePool* default_pool)
    : store_(store), default_pool_(default_pool) {}

StorageService::~StorageService() = default;

void StorageService::Load() {
  auto records = store_->ListObjects(kKind);
  if (!records) {
    LOG_ERROR("storage pools: {}", records.error().ToString());
    return;
  }
  std::lock_guard lock(mu_);
  for (const Json& record : *records) {
    auto spec = PoolSpecFromJson(record);
    if (!spec) {
      LOG_ERROR("storage pools: {}", spec.error().ToString());
      continue;
    }
    auto pool = Open(*spec);
    if (!pool) {
      LOG_ERROR("storage pool {}: {}", spec->name, pool.error().ToString());
      continue;
    }
    pools_[spec->name] = Entry{*spec, std::move(*pool)};
  }
}

Result<Json> StorageService::Create(const PoolSpec& in) {
  PoolSpec spec = in;
  TRY(ValidateStorageName("pool name", spec.name));
  if (spec.type == "dir") {
    if (spec.path.empty() || !std::filesystem::path(spec.path).is_absolute())
      return Err(ErrorCode::kInvalidArgument,
                 "a dir pool needs an absolute --path");
    if (!spec.vg.empty() || !spec.thin_pool.empty())
      return Err(ErrorCode::kInvalidArgument,
                 "--vg and --thinpool are for lvm-thin pools");
    spec.path = std::filesystem::path(spec.path).lexically_normal().string();
    if (spec.path.size() > 1 && spec.path.back() == '/') spec.path.pop_back();
  } else if (spec.type == "lvm-thin") {
    if (spec.vg.empty() || spec.thin_pool.empty())
      return Err(ErrorCode::kInvalidArgument,
                 "an lvm-thin pool needs --vg and --thinpool");
    if (!spec.path.empty())
      return Err(ErrorCode::kInvalidArgument, "--path is for dir pools");
  } else {
    return Err(ErrorCode::kInvalidArgument, "unknown pool type '" + spec.type +
                                                "' (expected dir or lvm-thin)");
  }
  std::lock_guard lock(mu_);
  if (spec.name == kDefaultPool || pools_.count(spec.name))
    return Err(ErrorCode::kAlreadyExists,
               "storage pool '" + spec.name + "' already exists");
  // Two pools over one directory or thin pool would count and delete each
  // other's volumes.
  std::vector<Json> others;
  if (auto u = default_pool_->Usage()) others.push_back(*u);
  for (auto& [name, entry] : pools_) others.push_back(ToJson(entry.spec));
  for (const Json& o : others) {
    bool same = spec.type == "dir"
                    ? o.value("path", "") == spec.path
                    : o.value("vg", "") == spec.vg &&
                          o.value("thin_pool", "") == spec.thin_pool;
    if (same)
      return Err(ErrorCode::kAlreadyExists,
                 "storage pool '" + o.value("name", "") +
                     "' already uses that " +
                     (spec.type == "dir" ? "directory" : "thin pool"));
  }
  ASSIGN_OR_RETURN(auto pool, Open(spec));
  TRY(store_->CreateObject(kKind, spec.name, ToJson(spec)));
  VolumePool* raw = pool.get();
  pools_[spec.name] = Entry{spec, std::move(pool)};
  LOG_INFO("storage pool {} created ({})", spec.name, spec.type);
  return Describe(spec.name, raw, &pools_[spec.name].spec);
}

Result<Json> StorageService::Describe(const std::string& name, VolumePool* pool,
                                      const PoolSpec* spec) {
  ASSIGN_OR_RETURN(Json usage, pool->Usage());
  usage["name"] = name;
  usage["type"] = spec ? spec->type : "dir";
  usage["quota_bytes"] = spec ? spec->quota_bytes : 0;
  usage["volume_format"] = pool->volume_format();
  return usage;
}

Result<std::vector<Json>> StorageService::List() {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  ASSIGN_OR_RETURN(Json d, Describe(kDefaultPool, default_pool_, nullptr));
  out.push_back(std::move(d));
  for (auto& [name, entry] : pools_) {
    auto j = Describe(name, entry.pool.get(), &entry.spec);
    if (!j) {
      // One broken pool must not hide the others.
      Json broken = ToJson(entry.spec);
      broken["error"] = j.error().ToString();
      out.push_back(std::move(broken));
      continue;
    }
    out.push_back(std::move(*j));
  }
  return out;
}

Result<Json> StorageService::Show(const std::string& name) {
  TRY(ValidateStorageName("pool name", name));
  std::lock_guard lock(mu_);
  if (name == kDefaultPool) return Describe(name, default_pool_, nullptr);
  auto it = pools_.find(name);
  if (it == pools_.end())
    return Err(ErrorCode::kNotFound, "storage pool '" + name + "' not found");
  return Describe(name, it->second.pool.get(), &it->second.spec);
}

Status StorageService::Delete(const std::string& name) {
  TRY(ValidateStorageName("pool name", name));
  if (name == kDefaultPool)
    return Err(ErrorCode::kFailedPrecondition,
               "the default storage pool cannot be deleted");
  std::lock_guard lock(mu_);
  auto it = pools_.find(name);
  if (it == pools_.end())
    return Err(ErrorCode::kNotFound, "storage pool '" + name + "' not found");
  ASSIGN_OR_RETURN(Json usage, it->second.pool->Usage());
  uint64_t volumes = usage.value("volumes", uint64_t{0});
  if (volumes > 0)
    return Err(ErrorCode::kFailedPrecondition,
               "storage pool '" + name + "' still holds " +
                   std::to_string(volumes) + " volume(s); delete them first");
  TRY(store_->DeleteObject(kKind, name));
  pools_.erase(it);
  LOG_INFO("storage pool {} deleted", name);
  return Ok();
}

Result<VolumePool*> StorageService::Find(const std::string& name) {
  if (name.empty() || name == kDefaultPool) return default_pool_;
  TRY(ValidateStorageName("pool name", name));
  std::lock_guard lock(mu_);
  auto it = pools_.find(name);
  if (it == pools_.end())
    return Err(ErrorCode::kNotFound, "storage pool '" + name + "' not found");
  return it->second.pool.get();
}

Status StorageService::CheckQuota(const std::string& name, uint64_t extra) {
  if (name.empty() || name == kDefaultPool) return Ok();
  std::lock_guard lock(mu_);
  auto it = pools_.find(name);
  if (it == pools_.end())
    return Err(ErrorCode::kNotFound, "storage pool '" + name + "' not found");
  uint64_t quota = it->second.spec.quota_bytes;
  if (quota == 0) return Ok();
  ASSIGN_OR_RETURN(Json usage, it->second.pool->Usage());
  uint64_t allocated = usage.value("allocated_bytes", uint64_t{0});
  if (allocated + extra > quota)
    return Err(ErrorCode::kResourceExhausted,
               "storage pool '" + name +
                   "' quota exceeded: " + std::to_string(allocated) +
                   " bytes allocated + " + std::to_string(extra) +
                   " requested > quota " + std::to_string(quota));
  return Ok();
}

}  // namespace vireo
