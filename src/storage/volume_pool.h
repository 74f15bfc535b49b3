#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/json.h"

namespace vireo {

struct ImageInfo {
  std::string format;  // "qcow2", "raw", ...
  uint64_t virtual_size = 0;
  uint64_t actual_size = 0;
  std::string backing_file;  // empty if none
};

// A storage pool holding instance volumes. The directory pool is the first
// implementation; LVM-thin and others follow the same interface.
class VolumePool {
 public:
  virtual ~VolumePool() = default;
  virtual std::string name() const = 0;
  // Creates an empty qcow2 volume; returns its path. kAlreadyExists if present.
  [[nodiscard]] virtual Result<std::string> CreateVolume(
      const std::string& owner_id, const std::string& volume,
      uint64_t size_bytes) = 0;
  // Creates a qcow2 volume holding a full copy of an image file (qcow2 or
  // raw, detected by qemu-img, never by file name). Grows it to min_size.
  [[nodiscard]] virtual Result<std::string> CreateVolumeFrom(
      const std::string& owner_id, const std::string& volume,
      const std::string& source, uint64_t min_size) = 0;
  // Creates a volume whose unwritten data reads through to `base` (a qcow2
  // linked clone with a backing file), grown to min_size. `base` must be an
  // image the caller trusts (the image store), it is recorded by absolute
  // path. kFailedPrecondition for pool types that cannot do this.
  [[nodiscard]] virtual Result<std::string> CreateLinkedClone(
      const std::string& owner_id, const std::string& volume,
      const std::string& base, const std::string& base_format,
      uint64_t min_size) = 0;
  // Removes a volume; absent is not an error.
  [[nodiscard]] virtual Status DeleteVolume(const std::string& path) = 0;
  // Removes everything owned by owner_id (its directory).
  [[nodiscard]] virtual Status DeleteOwner(const std::string& owner_id) = 0;
  [[nodiscard]] virtual Result<Json> Usage() const = 0;
  // Grows a volume to new_size bytes; a shrink is kInvalidArgument. Runs
  // offline: a running VM's qcow2 volume is grown through QMP instead.
  [[nodiscard]] virtual Status ResizeVolume(const std::string& path,
                                            uint64_t new_size) {
    (void)path;
    (void)new_size;
    return Err(ErrorCode::kFailedPrecondition,
               "pool " + name() + " cannot resize volumes");
  }
  // Format of the volumes this pool creates: "qcow2" files or "raw" devices.
  virtual std::string volume_format() const { return "qcow2"; }
};

// True if the file is an ISO 9660 image ("CD001" at byte 0x8001); qemu-img
// calls those "raw".
[[nodiscard]] Result<bool> IsIso9660(const std::string& path);

// Asks qemu-img about a file. kInvalidArgument if it is not a readable image.
Result<ImageInfo> ProbeImage(const std::string& path);

}  // namespace vireo
