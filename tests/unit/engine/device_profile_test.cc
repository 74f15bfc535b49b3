// Firmware, install media and per-OS device profiles in the QEMU argv.
#include "engine/qemu/device_profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "core/install_media.h"
#include "engine/qemu/command_line.h"

namespace vireo {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Instance MakeInstance(const std::string& os_type = "linux") {
  Instance inst;
  inst.id = "0123456789abcdef";
  inst.config.name = "vm1";
  inst.config.os_type = os_type;
  DiskConfig disk;
  disk.name = "disk0";
  disk.path = "/var/lib/vireo/disk0.qcow2";
  inst.config.disks.push_back(disk);
  NicConfig nic;
  nic.name = "eth0";
  inst.config.nics.push_back(nic);
  return inst;
}

DiskConfig Cdrom() {
  DiskConfig cd;
  cd.name = "cdrom0";
  cd.path = "/images/install.iso";
  cd.format = "raw";
  cd.media = "cdrom";
  cd.readonly = true;
  return cd;
}

VmPaths Paths() {
  VmPaths p;
  p.dir = "/run/vireo/x";
  p.qmp_socket = p.dir + "/qmp.sock";
  p.serial_socket = p.dir + "/serial.sock";
  p.vnc_socket = p.dir + "/vnc.sock";
  p.console_log = p.dir + "/console.log";
  p.pid_file = p.dir + "/qemu.pid";
  return p;
}

Result<std::vector<std::string>> TryBuild(const Instance& inst) {
  static const QemuLaunchOptions opts;
  static const VmPaths paths = Paths();
  return QemuCommandLine(inst, paths, opts).Build();
}

std::vector<std::string> Build(const Instance& inst) {
  auto argv = TryBuild(inst);
  EXPECT_TRUE(argv) << argv.error().ToString();
  return argv ? *argv : std::vector<std::string>{};
}

std::vector<std::string> ValuesOf(const std::vector<std::string>& argv,
                                  const std::string& flag) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag) out.push_back(argv[i + 1]);
  return out;
}

TEST(FirmwareTest, BiosAddsNoPflash) {
  auto argv = Build(MakeInstance());
  EXPECT_TRUE(ValuesOf(argv, "-drive").empty());
  EXPECT_THAT(argv, Not(Contains(HasSubstr("pflash"))));
}

TEST(FirmwareTest, UefiAddsReadOnlyCodeAndPerVmVars) {
  Instance inst = MakeInstance();
  inst.config.firmware = "uefi";
  inst.config.uefi_vars = "/var/lib/vireo/instances/0123/OVMF,VARS.fd";
  auto argv = Build(inst);
  EXPECT_THAT(
      ValuesOf(argv, "-drive"),
      ElementsAre(std::string("if=pflash,format=raw,unit=0,readonly=on,file=") +
                      kOvmfCode,
                  "if=pflash,format=raw,unit=1,file=/var/lib/vireo/instances/"
                  "0123/OVMF,,VARS.fd"));
}

TEST(FirmwareTest, UefiWithoutVarsOrUnknownFirmwareRefused) {
  Instance inst = MakeInstance();
  inst.config.firmware = "uefi";
  auto argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("uefi_vars"));
  inst.config.firmware = "coreboot";
  argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("unknown firmware"));
}

TEST(InstallMediaTest, CdromBootsFirstThenDisk) {
  Instance inst = MakeInstance();
  inst.config.disks.push_back(Cdrom());  // listed after the disk
  auto argv = Build(inst);
  EXPECT_THAT(
      ValuesOf(argv, "-device"),
      Contains("virtio-blk-pci,drive=disk0,id=virtio-disk0,bootindex=2"));
  EXPECT_THAT(
      ValuesOf(argv, "-device"),
      Contains("ide-cd,bus=ide.0,drive=cdrom0-media,id=cdrom0,bootindex=1"));
  EXPECT_THAT(ValuesOf(argv, "-blockdev"),
              Contains("driver=file,filename=/images/install.iso,node-name="
                       "cdrom0-media-file,cache.direct=off,read-only=on"));
  EXPECT_THAT(ValuesOf(argv, "-blockdev"),
              Contains("driver=raw,file=cdrom0-media-file,node-name=cdrom0-"
                       "media,read-only=on"));
}

TEST(InstallMediaTest, WithoutCdromDiskBootsFirst) {
  auto argv = Build(MakeInstance());
  EXPECT_THAT(
      ValuesOf(argv, "-device"),
      Contains("virtio-blk-pci,drive=disk0,id=virtio-disk0,bootindex=1"));
  EXPECT_THAT(argv, Not(Contains(HasSubstr("ide-cd"))));
}

TEST(InstallMediaTest, UnknownMediaRefused) {
  Instance inst = MakeInstance();
  inst.config.disks[0].media = "floppy";
  auto argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("unsupported media"));
}

TEST(DeviceProfileTest, LinuxIsVirtioWithUtcClock) {
  auto argv = Build(MakeInstance("linux"));
  auto devices = ValuesOf(argv, "-device");
  EXPECT_THAT(devices, Contains(HasSubstr("virtio-blk-pci,drive=disk0")));
  EXPECT_THAT(devices, Contains(HasSubstr("virtio-net-pci,netdev=net0")));
  // Every VM has a display and an absolute pointer for its VNC console.
  EXPECT_THAT(devices, Contains("VGA,id=video0"));
  EXPECT_THAT(devices, Contains(HasSubstr("usb-tablet,bus=usb.0")));
  EXPECT_THAT(ValuesOf(argv, "-rtc"), ElementsAre("base=utc"));
}

TEST(DeviceProfileTest, WindowsGetsSataE1000eTabletAndLocalTime) {
  Instance inst = MakeInstance("windows");
  inst.config.disks.push_back(Cdrom());
  auto argv = Build(inst);
  auto devices = ValuesOf(argv, "-device");
  // The disk and the CD-ROM share the AHCI controller, one port each.
  EXPECT_THAT(
      devices,
      Contains("ide-hd,bus=ide.0,drive=disk0,id=sata-disk0,bootindex=2"));
  EXPECT_THAT(devices, Contains(HasSubstr("ide-cd,bus=ide.1,")));
  EXPECT_THAT(devices, Contains(HasSubstr("e1000e,netdev=net0,id=nic0")));
  EXPECT_THAT(devices, Contains("qemu-xhci,id=usb"));
  EXPECT_THAT(devices, Contains(HasSubstr("usb-tablet,bus=usb.0")));
  EXPECT_THAT(devices, Not(Contains(HasSubstr("virtio"))));
  EXPECT_THAT(ValuesOf(argv, "-rtc"), ElementsAre("base=localtime"));
}

TEST(DeviceProfileTest, OtherIsSataE1000eUtc) {
  auto argv = Build(MakeInstance("other"));
  auto devices = ValuesOf(argv, "-device");
  EXPECT_THAT(devices, Contains(HasSubstr("ide-hd,bus=ide.0,drive=disk0")));
  EXPECT_THAT(devices, Contains(HasSubstr("e1000e,netdev=net0")));
  EXPECT_THAT(devices, Contains("VGA,id=video0"));
  EXPECT_THAT(devices, Contains(HasSubstr("usb-tablet,bus=usb.0")));
  EXPECT_THAT(ValuesOf(argv, "-rtc"), ElementsAre("base=utc"));
}

TEST(DeviceProfileTest, ExplicitBusAndModelWin) {
  Instance inst = MakeInstance("windows");
  inst.config.disks[0].bus = "virtio";
  inst.config.nics[0].model = "virtio";
  auto devices = ValuesOf(Build(inst), "-device");
  EXPECT_THAT(devices, Contains(HasSubstr("virtio-blk-pci,drive=disk0")));
  EXPECT_THAT(devices, Contains(HasSubstr("virtio-net-pci,netdev=net0")));
  inst = MakeInstance("linux");
  inst.config.disks[0].bus = "sata";
  inst.config.nics[0].model = "e1000";
  devices = ValuesOf(Build(inst), "-device");
  EXPECT_THAT(devices, Contains(HasSubstr("ide-hd,bus=ide.0,drive=disk0")));
  EXPECT_THAT(devices, Contains(HasSubstr("e1000,netdev=net0")));
}

TEST(DeviceProfileTest, BadValuesRefused) {
  Instance inst = MakeInstance("beos");
  auto argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("unknown os_type"));

  inst = MakeInstance();
  inst.config.disks[0].bus = "scsi";
  argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("unsupported bus 'scsi'"));

  inst = MakeInstance();
  inst.config.nics[0].model = "ne2k,evil=1";
  argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("unsupported model"));
}

TEST(DeviceProfileTest, AtMostSixAhciDevices) {
  Instance inst = MakeInstance("other");
  for (int i = 1; i < 6; ++i) {
    DiskConfig d = inst.config.disks[0];
    d.name = "disk" + std::to_string(i);
    inst.config.disks.push_back(d);
  }
  EXPECT_TRUE(TryBuild(inst));
  inst.config.disks.push_back(Cdrom());
  auto argv = TryBuild(inst);
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("no free SATA port"));
}

}  // namespace
}  // namespace vireo
