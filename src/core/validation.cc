#include "core/validation.h"

#include <sys/stat.h>

#include "common/units.h"

namespace vireo {

namespace {
Status CheckFile(const std::string& what, const std::string& path) {
  if (path.empty()) return Ok();
  if (path.front() != '/')
    return Err(ErrorCode::kInvalidArgument,
               what + " path must be absolute: '" + path + "'");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Err(ErrorCode::kInvalidArgument,
               what + " file not found: '" + path + "'");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return Err(ErrorCode::kInvalidArgument,
               what + " is not a regular file: '" + path + "'");
  return Ok();
}
}  // namespace

Status ValidateInstanceName(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return Err(ErrorCode::kInvalidArgument,
               "invalid instance name '" + std::string(name) + "': " + why);
  };
  if (name.empty()) return bad("must not be empty");
  if (name.size() > 63) return bad("longer than 63 characters");
  if (!std::isalpha(static_cast<unsigned char>(name[0])))
    return bad("must start with a letter");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'))
      return bad("only letters, digits and '-' are allowed");
  }
  if (name.back() == '-') return bad("must not end with '-'");
  return Ok();
}

Status ValidateCreateRequest(const CreateRequest& r) {
  TRY(ValidateInstanceName(r.name));
  if (r.cpus < 1 || r.cpus > kMaxCpus)
    return Err(ErrorCode::kInvalidArgument,
               "cpus must be between 1 and " + std::to_string(kMaxCpus) +
                   ", got " + std::to_string(r.cpus));
  if (r.memory_bytes < kMinMemory || r.memory_bytes > kMaxMemory)
    return Err(ErrorCode::kInvalidArgument,
               "memory must be between " + FormatSize(kMinMemory) + " and " +
                   FormatSize(kMaxMemory) + ", got " +
                   std::to_string(r.memory_bytes) + " bytes");
  if (r.memory_bytes % (1ull << 20) != 0)
    return Err(ErrorCode::kInvalidArgument,
               "memory must be a whole number of MiB");
  if (r.cmdline.size() > kMaxCmdline)
    return Err(ErrorCode::kInvalidArgument, "cmdline longer than 4096 bytes");
  if (!r.cmdline.empty() && r.kernel.empty())
    return Err(ErrorCode::kInvalidArgument, "cmdline needs a kernel");
  if (!r.initrd.empty() && r.kernel.empty())
    return Err(ErrorCode::kInvalidArgument, "initrd needs a kernel");
  TRY(CheckFile("kernel", r.kernel));
  TRY(CheckFile("initrd", r.initrd));
  if (r.disks.size() > kMaxDisks)
    return Err(ErrorCode::kInvalidArgument, "at most 16 disks");
  for (size_t i = 0; i < r.disks.size(); ++i) {
    const auto& d = r.disks[i];
    std::string which = "disk " + std::to_string(i);
    if (d.source.empty() && d.size_bytes == 0)
      return Err(ErrorCode::kInvalidArgument,
                 which + " needs a size or a source image");
    if (d.size_bytes != 0 &&
        (d.size_bytes < kMinDiskSize || d.size_bytes > kMaxDiskSize))
      return Err(ErrorCode::kInvalidArgument,
                 which + " size must be between 1MiB and 64TiB");
    TRY(CheckFile(which + " source", d.source));
  }
  if (r.kernel.empty() && r.disks.empty() && r.image.empty() && r.iso.empty())
    return Err(ErrorCode::kInvalidArgument,
               "nothing to boot: give a kernel, a disk, an image or an ISO");
  if (r.nics < 0 || r.nics > kMaxNics)
    return Err(ErrorCode::kInvalidArgument, "nics must be between 0 and 8");
  return Ok();
}

}  // namespace vireo
