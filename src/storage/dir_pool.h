#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.h"
#include "storage/volume_pool.h"

namespace vireo {

// Volumes as qcow2 files in a directory tree: <root>/<owner_id>/<volume>.qcow2.
// Every volume appears whole or not at all: it is built under a temporary
// name in the same directory and renamed into place.
class DirPool : public VolumePool {
 public:
  // Creates root_dir if needed. Fails if qemu-img is not installed.
  static Result<std::unique_ptr<DirPool>> Create(std::string name,
                                                 std::string root_dir);

  std::string name() const override { return name_; }
  const std::string& root() const { return root_; }

  [[nodiscard]] Result<std::string> CreateVolume(const std::string& owner_id,
                                                 const std::string& volume,
                                                 uint64_t size_bytes) override;
  [[nodiscard]] Result<std::string> CreateVolumeFrom(
      const std::string& owner_id, const std::string& volume,
      const std::string& source, uint64_t min_size) override;
  [[nodiscard]] Result<std::string> CreateLinkedClone(
      const std::string& owner_id, const std::string& volume,
      const std::string& base, const std::string& base_format,
      uint64_t min_size) override;
  [[nodiscard]] Status DeleteVolume(const std::string& path) override;
  [[nodiscard]] Status DeleteOwner(const std::string& owner_id) override;
  // {name, driver, path, capacity_bytes, used_bytes, allocated_bytes, volumes}
  [[nodiscard]] Result<Json> Usage() const override;
  [[nodiscard]] Status ResizeVolume(const std::string& path,
                                    uint64_t new_size) override;

 private:
  DirPool(std::string name, std::string root)
      : name_(std::move(name)), root_(std::move(root)) {}

  // Validates the names, makes the owner directory and returns the final
  // volume path; kAlreadyExists if it is taken.
  // kInvalidArgument unless path is a volume file of this pool.
  Status CheckVolumePath(const std::string& path) const;
  Result<std::string> PrepareVolumePath(const std::string& owner_id,
                                        const std::string& volume);

  std::string name_;
  std::string root_;  // canonical, no trailing slash
};

}  // namespace vireo
