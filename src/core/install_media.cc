#include "core/install_media.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/fd.h"
#include "common/log.h"

namespace vireo {

namespace {

// An ISO given by path must be an absolute path to a regular file.
Status CheckIsoFile(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return Err(ErrorCode::kInvalidArgument,
               what + ": '" + path + "' is not a regular file");
  ASSIGN_OR_RETURN(bool iso, IsIso9660(path));
  if (!iso)
    return Err(ErrorCode::kInvalidArgument,
               what + ": '" + path + "' is not an ISO 9660 image");
  return Ok();
}

Result<std::string> IsoPathFromStore(Store* store, const std::string& name) {
  auto image = store->GetObject("image", name);
  if (!image) {
    if (image.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound,
                 "iso: no image named '" + name +
                     "' (give an image name or an absolute path)");
    return tl::unexpected(image.error());
  }
  auto field = [&](const char* key) {
    auto it = image->find(key);
    return it != image->end() && it->is_string() ? it->get<std::string>()
                                                 : std::string();
  };
  if (field("format") != "iso")
    return Err(ErrorCode::kInvalidArgument,
               "iso: image '" + name + "' is " +
                   (field("format").empty() ? "of unknown format"
                                            : "a " + field("format")) +
                   " image, not an ISO");
  std::string path = field("path");
  if (path.empty() || path.front() != '/')
    return Err(ErrorCode::kInternal,
               "image '" + name + "' has no valid path in the store");
  return path;
}

}  // namespace

Result<DiskConfig> ResolveInstallMedia(Store* store,
                                       const CreateRequest& request) {
  if (request.firmware != "bios" && request.firmware != "uefi")
    return Err(
        ErrorCode::kInvalidArgument,
        "unknown firmware '" + request.firmware + "' (expected bios or uefi)");
  if (request.os_type != "linux" && request.os_type != "windows" &&
      request.os_type != "other")
    return Err(ErrorCode::kInvalidArgument,
               "unknown os_type '" + request.os_type +
                   "' (expected linux, windows or other)");
  if (request.firmware == "uefi") {
    for (const char* f : {kOvmfCode, kOvmfVarsTemplate}) {
      if (::access(f, R_OK) != 0)
        return Err(ErrorCode::kFailedPrecondition,
                   std::string("UEFI firmware file ") + f +
                       " is missing (install Debian's ovmf package)");
    }
  }
  DiskConfig cd;
  if (request.iso.empty()) return cd;
  std::string path = request.iso;
  if (path.front() == '/') {
    TRY(CheckIsoFile(path, "iso"));
  } else {
    ASSIGN_OR_RETURN(path, IsoPathFromStore(store, request.iso));
    TRY(CheckIsoFile(path, "iso image '" + request.iso + "'"));
    cd.image = request.iso;
  }
  cd.name = "cdrom0";
  cd.path = path;
  cd.format = "raw";
  cd.media = "cdrom";
  cd.readonly = true;
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  cd.size_bytes = ec ? 0 : size;
  return cd;
}

Status ValidateInstallMedia(Store* store, const CreateRequest& request) {
  TRY(ResolveInstallMedia(store, request));
  return Ok();
}

Status AddInstallMedia(Store* store, const CreateRequest& request,
                       const std::string& state_dir, InstanceConfig* config) {
  ASSIGN_OR_RETURN(DiskConfig cd, ResolveInstallMedia(store, request));
  if (!cd.path.empty()) config->disks.push_back(std::move(cd));
  if (request.firmware == "uefi") {
    ASSIGN_OR_RETURN(config->uefi_vars, CreateUefiVars(state_dir));
  }
  return Ok();
}

Result<std::string> CreateUefiVars(const std::string& dir) {
  if (dir.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "UEFI needs a per-instance state directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Err(ErrorCode::kIo, "create directory " + dir + ": " + ec.message());
  std::string vars = dir + "/OVMF_VARS.fd";
  std::filesystem::copy_file(kOvmfVarsTemplate, vars,
                             std::filesystem::copy_options::overwrite_existing,
                             ec);
  if (ec)
    return Err(ErrorCode::kIo, std::string("copy ") + kOvmfVarsTemplate +
                                   " to " + vars + ": " + ec.message());
  return vars;
}

std::string CdromDeviceId(const DiskConfig& disk) { return disk.name; }
std::string CdromNodeName(const DiskConfig& disk) {
  return disk.name + "-media";
}

Result<Json> EjectMedia(Store* store, VmEngine* engine,
                        const std::string& name) {
  ASSIGN_OR_RETURN(Instance inst, store->GetInstance(name));
  auto& disks = inst.config.disks;
  auto is_cd = [](const DiskConfig& d) { return d.media == "cdrom"; };
  if (std::none_of(disks.begin(), disks.end(), is_cd))
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + name + "' has no ISO attached");
  Json ejected = Json::array();
  if (engine->IsRunning(name)) {
    for (const DiskConfig& d : disks) {
      if (!is_cd(d)) continue;
      // force: the guest locks the tray while it uses the disc.
      TRY_CTX(engine->Qmp(name, "eject",
                          {{"id", CdromDeviceId(d)}, {"force", true}}),
              "eject " + d.name);
      // Closing the node releases the ISO file; the empty drive stays.
      for (std::string node : {CdromNodeName(d), CdromNodeName(d) + "-file"}) {
        auto del = engine->Qmp(name, "blockdev-del", {{"node-name", node}});
        if (!del)
          LOG_WARN("{}: blockdev-del {}: {}", name, node,
                   del.error().ToString());
      }
    }
  }
  for (const DiskConfig& d : disks)
    if (is_cd(d)) ejected.push_back(d.path);
  disks.erase(std::remove_if(disks.begin(), disks.end(), is_cd), disks.end());
  TRY(store->UpdateInstance(inst));
  return Json{{"ejected", ejected}};
}

}  // namespace vireo
