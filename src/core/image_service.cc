#include "core/image_service.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <set>

#include "common/log.h"
#include "common/random.h"
#include "common/units.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kKind = "image";

std::string ImageUrl(const std::string& name) { return "/1.0/images/" + name; }

std::vector<std::string> Aliases(const Json& record) {
  std::vector<std::string> out;
  auto it = record.find("aliases");
  if (it != record.end() && it->is_array())
    for (const auto& a : *it)
      if (a.is_string()) out.push_back(a.get<std::string>());
  return out;
}

std::string Field(const Json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : "";
}

uint64_t SizeField(const Json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number_unsigned() ? it->get<uint64_t>()
                                                        : 0;
}

StoredImage ToStored(const Json& record) {
  StoredImage s;
  s.path = Field(record, "path");
  s.format = Field(record, "format");
  s.size = SizeField(record, "size");
  s.virtual_size = SizeField(record, "virtual_size");
  s.sha256 = Field(record, "fingerprint");
  return s;
}

// The first writable disk (CD-ROMs and seeds are not the system's disk).
const DiskConfig* RootDiskOf(const Instance& inst) {
  for (const auto& d : inst.config.disks)
    if (d.media == "disk" && !d.readonly) return &d;
  return nullptr;
}

// Keeps an image counted as "being cloned" until the clone's instance record
// exists, so a concurrent delete cannot miss it.
struct LaunchHold {
  std::mutex* mu;
  std::map<std::string, int>* launching;
  std::string name;
  ~LaunchHold() {
    std::lock_guard lock(*mu);
    if (--(*launching)[name] <= 0) launching->erase(name);
  }
};

}  // namespace

Status ImageService::ValidateName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Err(ErrorCode::kInvalidArgument,
               "invalid image name '" + name + "': " + why);
  };
  if (name.empty()) return bad("must not be empty");
  if (name.size() > 63) return bad("longer than 63 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0])))
    return bad("must start with a letter or digit");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.')
      return bad("only letters, digits, '-', '_' and '.' are allowed");
  return Ok();
}

Result<std::unique_ptr<ImageService>> ImageService::Create(
    Store* store, OperationManager* ops, EventBus* events, std::string dir) {
  ASSIGN_OR_RETURN(auto files, ImageStore::Create(std::move(dir)));
  std::unique_ptr<ImageService> service(
      new ImageService(store, ops, events, std::move(files)));
  service->RemoveOrphans();
  return service;
}

void ImageService::RemoveOrphans() {
  auto records = store_->ListObjects(kKind);
  if (!records) return;
  std::set<std::string> known;
  for (const auto& r : *records) known.insert(Field(r, "path"));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(files_->dir(), ec)) {
    std::string path = e.path().string();
    if (files_->Owns(path) && !known.count(path)) {
      LOG_INFO("removing image file without a record: {}", path);
      (void)files_->Remove(path);
    }
  }
}

Result<std::vector<Json>> ImageService::List() {
  return store_->ListObjects(kKind);
}

Result<Json> ImageService::Get(const std::string& name_or_alias) {
  TRY(ValidateName(name_or_alias));
  auto direct = store_->GetObject(kKind, name_or_alias);
  if (direct) return direct;
  if (direct.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(direct.error());
  ASSIGN_OR_RETURN(auto all, store_->ListObjects(kKind));
  for (auto& record : all) {
    for (const auto& a : Aliases(record))
      if (a == name_or_alias) return record;
  }
  return Err(ErrorCode::kNotFound, "image '" + name_or_alias + "' not found");
}

Status ImageService::CheckNamesFree(const std::vector<std::string>& names) {
  ASSIGN_OR_RETURN(auto all, store_->ListObjects(kKind));
  for (const auto& record : all) {
    std::vector<std::string> taken = Aliases(record);
    taken.push_back(Field(record, "name"));
    for (const auto& n : names)
      for (const auto& t : taken)
        if (n == t)
          return Err(ErrorCode::kAlreadyExists,
                     "image name '" + n + "' is already used by image '" +
                         Field(record, "name") + "'");
  }
  return Ok();
}

Result<Operation> ImageService::BeginImport(ImageImportRequest request) {
  if (request.aliases.empty())
    return Err(ErrorCode::kInvalidArgument, "an image needs an alias");
  std::set<std::string> seen;
  for (const auto& a : request.aliases) {
    TRY(ValidateName(a));
    if (!seen.insert(a).second)
      return Err(ErrorCode::kInvalidArgument, "alias '" + a + "' given twice");
  }
  if (request.source.empty() == request.instance.empty())
    return Err(ErrorCode::kInvalidArgument,
               "give either a source file or an instance to publish");
  if (!request.source.empty()) {
    if (request.source.front() != '/')
      return Err(ErrorCode::kInvalidArgument,
                 "source path must be absolute: '" + request.source + "'");
    // Cheap checks now (the file is there and is an image); the slow ones
    // (qemu-img check, copy) run in the operation.
    TRY(ImageStore::DetectFormat(request.source));
  } else {
    ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(request.instance));
    if (inst.status.state != InstanceState::kStopped)
      return Err(ErrorCode::kFailedPrecondition,
                 "instance '" + request.instance + "' is " +
                     std::string(ToString(inst.status.state)) +
                     "; stop it before publishing");
    if (!RootDiskOf(inst))
      return Err(ErrorCode::kFailedPrecondition,
                 "instance '" + request.instance + "' has no root disk");
  }
  {
    std::lock_guard lock(mu_);
    TRY(CheckNamesFree(request.aliases));
  }
  std::string name = request.aliases.front();
  return ops_->Start(
      request.source.empty() ? "Publishing image" : "Importing image",
      {{"images", Json::array({ImageUrl(name)})}},
      [this, request] { return ImportWork(request); });
}

Result<Json> ImageService::ImportWork(const ImageImportRequest& request) {
  struct RemoveSource {
    const ImageImportRequest& r;
    ~RemoveSource() {
      std::error_code ec;
      if (r.remove_source) fs::remove(r.source, ec);
    }
  } remove_source{request};
  const std::string id = RandomHex(8);
  Result<StoredImage> stored;
  std::string source = request.source;
  if (!request.source.empty()) {
    stored = files_->Import(request.source, id);
  } else {
    ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(request.instance));
    // Re-checked here: it may have started since the request was accepted.
    // A start after this point fails on QEMU's image lock while we read.
    if (inst.status.state != InstanceState::kStopped)
      return Err(ErrorCode::kFailedPrecondition,
                 "instance '" + request.instance + "' is no longer stopped");
    const DiskConfig* root = RootDiskOf(inst);
    if (!root)
      return Err(ErrorCode::kFailedPrecondition,
                 "instance '" + request.instance + "' has no root disk");
    source = root->path;
    stored = files_->ImportDisk(root->path, root->format, id);
  }
  if (!stored) return tl::unexpected(stored.error());
  const std::string name = request.aliases.front();
  Json record = {{"name", name},
                 {"aliases", request.aliases},
                 {"fingerprint", stored->sha256},
                 {"format", stored->format},
                 {"path", stored->path},
                 {"size", stored->size},
                 {"virtual_size", stored->virtual_size},
                 {"os", request.os},
                 {"description", request.description},
                 {"source", request.remove_source ? "upload" : source},
                 {"created_at", static_cast<int64_t>(::time(nullptr))}};
  std::lock_guard lock(mu_);
  Status created = CheckNamesFree(request.aliases);
  if (created) created = store_->CreateObject(kKind, name, record);
  if (!created) {
    (void)files_->Remove(stored->path);
    return tl::unexpected(created.error());
  }
  events_->Publish("lifecycle",
                   {{"action", "image-created"}, {"source", ImageUrl(name)}});
  return record;
}

Result<Operation> ImageService::BeginExport(const std::string& name,
                                            const std::string& dest,
                                            const std::string& format) {
  ASSIGN_OR_RETURN(Json record, Get(name));
  if (dest.empty() || dest.front() != '/')
    return Err(ErrorCode::kInvalidArgument,
               "export path must be absolute: '" + dest + "'");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dest, ec)))
    return Err(ErrorCode::kAlreadyExists, "'" + dest + "' already exists");
  StoredImage stored = ToStored(record);
  return ops_->Start(
      "Exporting image",
      {{"images", Json::array({ImageUrl(Field(record, "name"))})}},
      [this, stored, dest, format]() -> Result<Json> {
        TRY(files_->Export(stored, dest, format));
        return Json{{"path", dest}};
      });
}

Result<std::vector<std::string>> ImageService::Dependents(
    const std::string& name) {
  ASSIGN_OR_RETURN(auto instances, store_->ListInstances());
  std::vector<std::string> out;
  for (const auto& inst : instances)
    for (const auto& d : inst.config.disks)
      if (d.image == name) {
        out.push_back(inst.name());
        break;
      }
  return out;
}

Status ImageService::Delete(const std::string& name_or_alias) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Json record, Get(name_or_alias));
  std::string name = Field(record, "name");
  if (launching_.count(name))
    return Err(ErrorCode::kFailedPrecondition,
               "image '" + name + "' is being cloned for a new instance");
  ASSIGN_OR_RETURN(auto users, Dependents(name));
  if (!users.empty()) {
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
    return Err(ErrorCode::kFailedPrecondition,
               "image '" + name + "' is in use by linked clones: " + list +
                   "; delete those instances first");
  }
  // Record first: a crash after it leaves an orphan file, which the next
  // start removes; the reverse would leave a record without a file.
  TRY(store_->DeleteObject(kKind, name));
  if (auto st = files_->Remove(Field(record, "path")); !st)
    LOG_WARN("image {}: {}", name, st.error().ToString());
  events_->Publish("lifecycle",
                   {{"action", "image-deleted"}, {"source", ImageUrl(name)}});
  return Ok();
}

Result<Json> ImageService::AddAlias(const std::string& name_or_alias,
                                    const std::string& alias) {
  TRY(ValidateName(alias));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Json record, Get(name_or_alias));
  TRY(CheckNamesFree({alias}));
  record["aliases"].push_back(alias);
  TRY(store_->UpdateObject(kKind, Field(record, "name"), record));
  return record;
}

Result<Json> ImageService::RemoveAlias(const std::string& name_or_alias,
                                       const std::string& alias) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Json record, Get(name_or_alias));
  std::string name = Field(record, "name");
  if (alias == name)
    return Err(ErrorCode::kInvalidArgument,
               "'" + alias + "' is the image's name, not an extra alias");
  auto aliases = Aliases(record);
  auto it = std::find(aliases.begin(), aliases.end(), alias);
  if (it == aliases.end())
    return Err(ErrorCode::kNotFound,
               "image '" + name + "' has no alias '" + alias + "'");
  aliases.erase(it);
  record["aliases"] = aliases;
  TRY(store_->UpdateObject(kKind, name, record));
  return record;
}

Status ImageService::CheckLaunchable(const std::string& name_or_alias,
                                     uint64_t root_size) {
  ASSIGN_OR_RETURN(Json record, Get(name_or_alias));
  std::string name = Field(record, "name");
  if (Field(record, "format") == "iso")
    return Err(ErrorCode::kInvalidArgument,
               "image '" + name +
                   "' is an ISO, not a disk; use vireo create --iso to "
                   "install from it");
  uint64_t vsize = SizeField(record, "virtual_size");
  if (root_size != 0 && root_size < vsize)
    return Err(ErrorCode::kInvalidArgument,
               "disk size " + FormatSize(root_size) +
                   " is smaller than image '" + name + "' (" +
                   FormatSize(vsize) + "); disks cannot shrink");
  return Ok();
}

Result<LaunchedDisk> ImageService::CreateRootDisk(
    VolumePool* pool, const std::string& owner_id,
    const std::string& name_or_alias, bool copy, uint64_t root_size) {
  LaunchedDisk out;
  std::string name;
  Json record;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(record, Get(name_or_alias));
    name = Field(record, "name");
    ++launching_[name];
  }
  out.hold =
      std::shared_ptr<LaunchHold>(new LaunchHold{&mu_, &launching_, name});
  TRY(CheckLaunchable(name, root_size));
  const std::string base = Field(record, "path");
  DiskConfig& disk = out.disk;
  disk.name = "root";
  disk.source = base;
  Result<std::string> path =
      copy ? pool->CreateVolumeFrom(owner_id, disk.name, base, root_size)
           : pool->CreateLinkedClone(owner_id, disk.name, base, "qcow2",
                                     root_size);
  if (!path) {
    Error e = path.error();
    e.WithContext("root disk from image '" + name + "'");
    return tl::unexpected(e);
  }
  disk.path = *path;
  if (!copy) disk.image = name;
  auto info = ProbeImage(disk.path);
  disk.size_bytes =
      info ? info->virtual_size
           : std::max(root_size, SizeField(record, "virtual_size"));
  return out;
}

}  // namespace vireo
