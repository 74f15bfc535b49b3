#include "core/launch_disks.h"

#include "core/cloud_init.h"

namespace vireo {

Status CheckLaunchRequest(ImageService* images, const CreateRequest& r) {
  if (!r.image.empty()) {
    if (!images)
      return Err(ErrorCode::kFailedPrecondition, "no image store configured");
    TRY(images->CheckLaunchable(r.image, r.root_size));
  } else if (r.copy_image || r.root_size != 0) {
    return Err(ErrorCode::kInvalidArgument,
               "copy and root_size need an image to launch from");
  }
  return ValidateCloudInit(r.cloud_init);
}

Result<LaunchDisks> MakeLaunchDisks(ImageService* images, VolumePool* pool,
                                    const CreateRequest& r,
                                    const std::string& id,
                                    const std::string& state_dir) {
  LaunchDisks out;
  if (!r.image.empty()) {
    if (!images)
      return Err(ErrorCode::kFailedPrecondition, "no image store configured");
    ASSIGN_OR_RETURN(
        LaunchedDisk root,
        images->CreateRootDisk(pool, id, r.image, r.copy_image, r.root_size));
    out.first.push_back(std::move(root.disk));
    out.hold = std::move(root.hold);
  }
  if (!r.cloud_init.empty()) {
    ASSIGN_OR_RETURN(DiskConfig seed,
                     BuildCloudInitSeed(r.cloud_init, id, state_dir));
    out.last.push_back(std::move(seed));
  }
  return out;
}

}  // namespace vireo
