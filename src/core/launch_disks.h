#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "core/image_service.h"
#include "core/instance.h"
#include "core/instance_service.h"
#include "storage/volume_pool.h"

namespace vireo {

// The disks a create request gets beyond its plain ones: the root disk made
// from an image (goes first, so it is the boot disk, /dev/vda) and the
// cloud-init seed (goes last).
struct LaunchDisks {
  std::vector<DiskConfig> first;
  std::vector<DiskConfig> last;
  std::shared_ptr<void> hold;  // keep until the instance record exists
};

// The image and cloud-init parts of a create request, checked without side
// effects.
Status CheckLaunchRequest(ImageService* images, const CreateRequest& request);

// Makes those disks for instance `id`; on failure the caller removes the
// instance's pool volumes and state dir as for any other disk.
Result<LaunchDisks> MakeLaunchDisks(ImageService* images, VolumePool* pool,
                                    const CreateRequest& request,
                                    const std::string& id,
                                    const std::string& state_dir);

}  // namespace vireo
