#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "core/instance.h"

namespace vireo {

// The emulated hardware that fits a guest OS: Linux gets paravirtual
// (virtio) devices; Windows gets devices it drives without extra drivers
// (AHCI disks, e1000e NIC, RTC in local time); "other" gets the same safe
// devices but a UTC clock. Every profile has a display and a USB tablet (an
// absolute pointer, so a VNC viewer's mouse lines up with the guest's).
struct DeviceProfile {
  std::string disk_bus;   // "virtio" or "sata"
  std::string nic_model;  // NicConfig.model value: "virtio", "e1000e", ...
  bool usb_tablet = false;
  bool rtc_localtime = false;
  // -device driver of the display. Standard VGA for all: every OS drives it
  // without extra drivers and Linux's text console (vgacon) works on it;
  // virtio-gpu would need a guest module.
  std::string video = "VGA";
};

[[nodiscard]] Result<DeviceProfile> ProfileFor(std::string_view os_type);

// The bus of a hard disk: its own DiskConfig.bus if set, else the profile's.
// Refuses buses we cannot build ("scsi" needs a controller we don't add).
[[nodiscard]] Result<std::string> DiskBusFor(const DeviceProfile& profile,
                                             const DiskConfig& disk);
// The QEMU -device driver of a NIC: its own model if set, else the profile's.
[[nodiscard]] Result<std::string> NicDriverFor(const DeviceProfile& profile,
                                               const NicConfig& nic);

// q35's built-in AHCI controller has six ports (buses ide.0 .. ide.5), one
// device each; SATA disks and CD-ROMs take them in order.
class AhciPorts {
 public:
  [[nodiscard]] Result<std::string> Next(const std::string& what);

 private:
  int used_ = 0;
};

// -device/-rtc arguments the profile adds besides disks and NICs.
std::vector<std::string> ProfileExtraArgs(const DeviceProfile& profile);

}  // namespace vireo
