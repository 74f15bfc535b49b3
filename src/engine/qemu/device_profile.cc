#include "engine/qemu/device_profile.h"

namespace vireo {

namespace {
constexpr int kAhciPorts = 6;
}  // namespace

Result<DeviceProfile> ProfileFor(std::string_view os_type) {
  if (os_type == "linux" || os_type.empty())
    return DeviceProfile{"virtio", "virtio", true, false, "VGA"};
  if (os_type == "windows")
    return DeviceProfile{"sata", "e1000e", true, true, "VGA"};
  if (os_type == "other")
    return DeviceProfile{"sata", "e1000e", true, false, "VGA"};
  return Err(ErrorCode::kInvalidArgument,
             "unknown os_type '" + std::string(os_type) +
                 "' (expected linux, windows or other)");
}

Result<std::string> DiskBusFor(const DeviceProfile& profile,
                               const DiskConfig& disk) {
  const std::string& bus = disk.bus.empty() ? profile.disk_bus : disk.bus;
  if (bus == "virtio" || bus == "sata") return bus;
  return Err(ErrorCode::kInvalidArgument, "disk " + disk.name +
                                              ": unsupported bus '" + bus +
                                              "' (expected virtio or sata)");
}

Result<std::string> NicDriverFor(const DeviceProfile& profile,
                                 const NicConfig& nic) {
  const std::string& model = nic.model.empty() ? profile.nic_model : nic.model;
  if (model == "virtio") return std::string("virtio-net-pci");
  if (model == "e1000e" || model == "e1000" || model == "rtl8139") return model;
  return Err(ErrorCode::kInvalidArgument,
             "nic " + nic.name + ": unsupported model '" + model +
                 "' (expected virtio, e1000e, e1000 or rtl8139)");
}

Result<std::string> AhciPorts::Next(const std::string& what) {
  if (used_ >= kAhciPorts)
    return Err(ErrorCode::kInvalidArgument,
               what + ": no free SATA port (at most 6 SATA disks and CD-ROMs)");
  return "ide." + std::to_string(used_++);
}

std::vector<std::string> ProfileExtraArgs(const DeviceProfile& profile) {
  std::vector<std::string> args;
  if (!profile.video.empty())
    args.insert(args.end(), {"-device", profile.video + ",id=video0"});
  if (profile.usb_tablet) {
    args.insert(args.end(), {"-device", "qemu-xhci,id=usb", "-device",
                             "usb-tablet,bus=usb.0,id=tablet0"});
  }
  args.insert(args.end(),
              {"-rtc", profile.rtc_localtime ? "base=localtime" : "base=utc"});
  return args;
}

}  // namespace vireo
