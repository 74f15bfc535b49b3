#pragma once

#include <string>

#include "common/error.h"
#include "core/instance.h"
#include "core/instance_service.h"

namespace vireo {

// Checks a NoCloud request without side effects: hostname syntax, one-line
// keys, sizes.
Status ValidateCloudInit(const CloudInitRequest& request);

// Builds a NoCloud seed (an ISO 9660 volume labelled "cidata" holding
// meta-data and user-data, made by xorriso) in dir/seed.iso and returns it
// as a read-only raw virtio disk: cloud-init finds it by its label.
Result<DiskConfig> BuildCloudInitSeed(const CloudInitRequest& request,
                                      const std::string& instance_id,
                                      const std::string& dir);

}  // namespace vireo
