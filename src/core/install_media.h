#pragma once

#include <string>

#include "common/error.h"
#include "common/json.h"
#include "core/instance.h"
#include "core/instance_service.h"
#include "core/vm_engine.h"
#include "storage/volume_pool.h"  // IsIso9660
#include "store/store.h"

namespace vireo {

// Debian's ovmf package: the 4 MiB (non-secure-boot) build. The variable
// store template must come from the same build as the code.
inline constexpr const char* kOvmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";
inline constexpr const char* kOvmfVarsTemplate =
    "/usr/share/OVMF/OVMF_VARS_4M.fd";

// Firmware and OS type of a create request, and its ISO: an absolute path
// to an ISO 9660 file, or the name of an image-store record ("image" kind,
// fields "path" and "format" == "iso"). Returns the CD-ROM disk to attach
// (no disk when the request has no ISO: an empty path). Changes nothing.
[[nodiscard]] Result<DiskConfig> ResolveInstallMedia(
    Store* store, const CreateRequest& request);

// BeginCreate's synchronous check of the above.
[[nodiscard]] Status ValidateInstallMedia(Store* store,
                                          const CreateRequest& request);

// Create-time setup: attaches the ISO as a CD-ROM (after the hard disks; it
// boots first) and, for UEFI, creates the VM's variable store in state_dir.
[[nodiscard]] Status AddInstallMedia(Store* store, const CreateRequest& request,
                                     const std::string& state_dir,
                                     InstanceConfig* config);

// Copies the OVMF variable store template into dir (created if needed) and
// returns the copy's path: the VM's persistent UEFI variables.
[[nodiscard]] Result<std::string> CreateUefiVars(const std::string& dir);

// Detaches every CD-ROM of a (locked) instance: live through QMP when the VM
// runs, and from the stored config. kFailedPrecondition if none is attached.
[[nodiscard]] Result<Json> EjectMedia(Store* store, VmEngine* engine,
                                      const std::string& name);

// QEMU ids of a CD-ROM, shared by the argv builder and live eject.
std::string CdromDeviceId(const DiskConfig& disk);
std::string CdromNodeName(const DiskConfig& disk);

}  // namespace vireo
