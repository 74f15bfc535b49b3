#include "core/cloud_init.h"

#include <stdio.h>

#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/process.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxUserData = 512 << 10;
constexpr size_t kMaxKeys = 32;

// JSON strings are valid YAML double-quoted scalars, so keys with any
// characters stay one well-formed YAML value.
std::string Quoted(const std::string& text) { return Json(text).dump(); }

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) return Err(ErrorCode::kIo, "write " + path.string());
  return Ok();
}

std::string MetaData(const CloudInitRequest& r, const std::string& id) {
  std::string out = "instance-id: " + id + "\n";
  if (!r.hostname.empty()) out += "local-hostname: " + r.hostname + "\n";
  if (!r.ssh_keys.empty()) {
    out += "public-keys:\n";
    for (const auto& k : r.ssh_keys) out += "  - " + Quoted(k) + "\n";
  }
  return out;
}

std::string UserData(const CloudInitRequest& r) {
  if (!r.user_data.empty()) return r.user_data;
  std::string out = "#cloud-config\n";
  if (!r.hostname.empty()) out += "hostname: " + r.hostname + "\n";
  if (!r.ssh_keys.empty()) {
    out += "ssh_authorized_keys:\n";
    for (const auto& k : r.ssh_keys) out += "  - " + Quoted(k) + "\n";
  }
  return out;
}

}  // namespace

Status ValidateCloudInit(const CloudInitRequest& r) {
  const std::string& h = r.hostname;
  if (h.size() > 253)
    return Err(ErrorCode::kInvalidArgument, "hostname longer than 253 bytes");
  for (size_t i = 0; i < h.size(); ++i) {
    char c = h[i];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) ||
              (c == '-' && i > 0 && i + 1 < h.size() && h[i - 1] != '.') ||
              (c == '.' && i > 0 && i + 1 < h.size() && h[i - 1] != '.');
    if (!ok)
      return Err(ErrorCode::kInvalidArgument,
                 "invalid hostname '" + h +
                     "': letters, digits, inner '-' and '.' only");
  }
  if (r.ssh_keys.size() > kMaxKeys)
    return Err(ErrorCode::kInvalidArgument, "at most 32 ssh keys");
  for (const auto& k : r.ssh_keys)
    if (k.empty() || k.find_first_of("\r\n") != std::string::npos)
      return Err(ErrorCode::kInvalidArgument,
                 "an ssh key must be one non-empty line");
  if (r.user_data.size() > kMaxUserData)
    return Err(ErrorCode::kInvalidArgument, "user-data larger than 512 KiB");
  return Ok();
}

Result<DiskConfig> BuildCloudInitSeed(const CloudInitRequest& request,
                                      const std::string& instance_id,
                                      const std::string& dir) {
  TRY(ValidateCloudInit(request));
  if (dir.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "cloud-init seeds need a state directory");
  fs::path src = fs::path(dir) / "cidata";
  std::error_code ec;
  fs::create_directories(src, ec);
  if (ec)
    return Err(ErrorCode::kIo, "create " + src.string() + ": " + ec.message());
  TRY(WriteText(src / "meta-data", MetaData(request, instance_id)));
  TRY(WriteText(src / "user-data", UserData(request)));
  std::string iso = (fs::path(dir) / "seed.iso").string();
  std::string tmp = iso + ".tmp";
  auto made = RunCommandOk({"xorriso", "-as", "mkisofs", "-quiet", "-V",
                            "cidata", "-J", "-r", "-o", tmp, src.string()});
  fs::remove_all(src, ec);
  if (!made) {
    fs::remove(tmp, ec);
    Error e = made.error();
    e.WithContext("build cloud-init seed (is xorriso installed?)");
    return tl::unexpected(e);
  }
  if (::rename(tmp.c_str(), iso.c_str()) != 0) {
    fs::remove(tmp, ec);
    return ErrnoErr("rename " + tmp);
  }
  DiskConfig disk;
  disk.name = "cidata";
  disk.path = iso;
  disk.format = "raw";
  disk.readonly = true;
  disk.media = "disk";
  disk.size_bytes = fs::file_size(iso, ec);
  return disk;
}

}  // namespace vireo
