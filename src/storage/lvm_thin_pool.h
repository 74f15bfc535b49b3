#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/volume_pool.h"

namespace vireo {

// Volumes as thin logical volumes of an existing LVM thin pool: raw block
// devices /dev/<vg>/<owner>+<volume>. The volume group and thin pool are the
// administrator's; Vireo only creates and removes its own thin volumes.
class LvmThinPool : public VolumePool {
 public:
  // Fails unless the LVM tools are installed and vg/thin_pool is a thin pool.
  static Result<std::unique_ptr<LvmThinPool>> Create(std::string name,
                                                     std::string vg,
                                                     std::string thin_pool);

  std::string name() const override { return name_; }
  std::string volume_format() const override { return "raw"; }

  [[nodiscard]] Result<std::string> CreateVolume(const std::string& owner_id,
                                                 const std::string& volume,
                                                 uint64_t size_bytes) override;
  [[nodiscard]] Result<std::string> CreateVolumeFrom(
      const std::string& owner_id, const std::string& volume,
      const std::string& source, uint64_t min_size) override;
  // Not possible: a thin volume has no backing-file chain to an image file.
  [[nodiscard]] Result<std::string> CreateLinkedClone(
      const std::string& owner_id, const std::string& volume,
      const std::string& base, const std::string& base_format,
      uint64_t min_size) override;
  [[nodiscard]] Status DeleteVolume(const std::string& path) override;
  [[nodiscard]] Status DeleteOwner(const std::string& owner_id) override;
  // {name, driver, vg, thin_pool, capacity_bytes, used_bytes,
  // allocated_bytes, volumes}
  [[nodiscard]] Result<Json> Usage() const override;
  // lvextend; works while a VM uses the device.
  [[nodiscard]] Status ResizeVolume(const std::string& path,
                                    uint64_t new_size) override;

 private:
  LvmThinPool(std::string name, std::string vg, std::string thin_pool)
      : name_(std::move(name)),
        vg_(std::move(vg)),
        pool_(std::move(thin_pool)) {}

  struct Lv {
    std::string name;
    std::string pool_lv;
    uint64_t size = 0;
    double data_percent = 0;
  };
  Result<std::vector<Lv>> ListLvs() const;
  // The LV name of a /dev/<vg>/<lv> path of this pool's volumes.
  Result<std::string> LvOfPath(const std::string& path) const;
  Result<std::string> NewThinVolume(const std::string& owner_id,
                                    const std::string& volume, uint64_t size);

  std::string name_;
  std::string vg_;
  std::string pool_;
};

// Runs an LVM tool. Without udev (containers) LVM is told to create device
// nodes itself instead of waiting for udev forever.
Result<std::string> RunLvm(std::vector<std::string> argv);

}  // namespace vireo
