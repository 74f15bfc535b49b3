#include "engine/qemu/command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace vireo {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

Instance MakeInstance() {
  Instance inst;
  inst.id = "0123456789abcdef";
  inst.config.name = "vm1";
  inst.config.cpus = 2;
  inst.config.memory_bytes = 64ull << 20;
  return inst;
}

VmPaths MakePaths(const std::string& dir = "/run/vireo/0123456789abcdef") {
  VmPaths p;
  p.dir = dir;
  p.qmp_socket = dir + "/qmp.sock";
  p.serial_socket = dir + "/serial.sock";
  p.vnc_socket = dir + "/vnc.sock";
  p.guest_agent_socket = dir + "/qga.sock";
  p.console_log = dir + "/console.log";
  p.pid_file = dir + "/qemu.pid";
  p.qemu_log = dir + "/qemu.log";
  return p;
}

std::vector<std::string> Build(const Instance& inst,
                               const QemuLaunchOptions& opts,
                               const VmPaths& paths = MakePaths()) {
  auto argv = QemuCommandLine(inst, paths, opts).Build();
  EXPECT_TRUE(argv) << argv.error().ToString();
  return argv ? *argv : std::vector<std::string>{};
}

// Every VM gets PCIe root ports for hot-plug; the tests of other devices
// look past them (HotplugPorts checks them).
bool IsRootPort(const std::string& value) {
  return value.rfind("pcie-root-port,", 0) == 0;
}

// The value following `flag`; "" if absent.
std::string ValueOf(const std::vector<std::string>& argv,
                    const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && !IsRootPort(argv[i + 1])) return argv[i + 1];
  }
  return "";
}

// The display devices every VM has (device_profile_test checks them), and
// the guest agent channel (GuestAgentChannel checks it).
bool IsDisplayDevice(const std::string& device) {
  return device.rfind("VGA,", 0) == 0 || device.rfind("qemu-xhci,", 0) == 0 ||
         device.rfind("usb-tablet,", 0) == 0 ||
         device.rfind("virtio-serial-pci,", 0) == 0 ||
         device.rfind("virtserialport,", 0) == 0 ||
         device.rfind("socket,id=qga0,", 0) == 0;
}

std::vector<std::string> ValuesOf(const std::vector<std::string>& argv,
                                  const std::string& flag,
                                  bool root_ports = false) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && (root_ports || !IsRootPort(argv[i + 1])) &&
        !IsDisplayDevice(argv[i + 1]))
      out.push_back(argv[i + 1]);
  }
  return out;
}

TEST(CommandLineTest, BasicTcg) {
  auto argv = Build(MakeInstance(), QemuLaunchOptions{});
  ASSERT_FALSE(argv.empty());
  EXPECT_EQ(argv[0], "qemu-system-x86_64");
  EXPECT_EQ(ValueOf(argv, "-name"), "guest=vm1,debug-threads=on");
  EXPECT_EQ(ValueOf(argv, "-machine"), "q35,accel=tcg");
  EXPECT_EQ(ValueOf(argv, "-cpu"), "max");
  EXPECT_EQ(ValueOf(argv, "-smp"), "2");
  EXPECT_EQ(ValueOf(argv, "-m"), "64M");
  EXPECT_EQ(ValueOf(argv, "-display"), "none");
  EXPECT_EQ(ValueOf(argv, "-vga"), "none");
  // The display is exported by VNC on a unix socket only, shared by viewers.
  EXPECT_EQ(ValueOf(argv, "-vnc"),
            "unix:/run/vireo/0123456789abcdef/vnc.sock,share=force-shared");
  EXPECT_THAT(argv, Contains("-nodefaults"));
  EXPECT_THAT(argv, Contains("-no-user-config"));
  EXPECT_EQ(ValueOf(argv, "-pidfile"), "/run/vireo/0123456789abcdef/qemu.pid");
  EXPECT_EQ(
      ValuesOf(argv, "-chardev"),
      (std::vector<std::string>{"socket,id=qmp,path=/run/vireo/"
                                "0123456789abcdef/qmp.sock,server=on,wait=off",
                                "socket,id=serial0,path=/run/vireo/"
                                "0123456789abcdef/serial.sock,server=on,"
                                "wait=off,logfile=/run/vireo/0123456789abcdef/"
                                "console.log,logappend=on"}));
  EXPECT_EQ(ValueOf(argv, "-mon"), "chardev=qmp,mode=control");
  EXPECT_EQ(ValueOf(argv, "-serial"), "chardev:serial0");
  EXPECT_THAT(argv, Not(Contains("-kernel")));
  EXPECT_THAT(argv, Not(Contains("-runas")));
}

TEST(CommandLineTest, GuestAgentChannel) {
  auto argv = Build(MakeInstance(), QemuLaunchOptions{});
  // A virtio-serial port by the name qemu-guest-agent looks for, backed by a
  // unix socket in the run dir (never TCP).
  auto at = [&](const std::string& value) {
    return std::find(argv.begin(), argv.end(), value) - argv.begin();
  };
  auto controller = at("virtio-serial-pci,id=vser0");
  auto chardev =
      at("socket,id=qga0,path=/run/vireo/0123456789abcdef/qga.sock,server=on,"
         "wait=off");
  auto port =
      at("virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0");
  ASSERT_LT(controller, static_cast<long>(argv.size()));
  ASSERT_LT(chardev, static_cast<long>(argv.size()));
  ASSERT_LT(port, static_cast<long>(argv.size()));
  EXPECT_EQ(argv[controller - 1], "-device");
  EXPECT_EQ(argv[chardev - 1], "-chardev");
  EXPECT_EQ(argv[port - 1], "-device");
  EXPECT_LT(controller, port);
  EXPECT_LT(chardev, port);
  // After every other device, so existing guests keep their PCI addresses.
  long last_other = 0;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "-device" && static_cast<long>(i + 1) != controller &&
        static_cast<long>(i + 1) != port)
      last_other = static_cast<long>(i + 1);
  }
  EXPECT_LT(last_other, controller);

  // A path with a comma stays one option value.
  auto odd = Build(MakeInstance(), {}, MakePaths("/run/a,b"));
  EXPECT_THAT(odd, Contains("socket,id=qga0,path=/run/a,,b/qga.sock,server=on,"
                            "wait=off"));
  // No socket path (callers that do not want the channel): no devices.
  VmPaths none = MakePaths();
  none.guest_agent_socket.clear();
  auto without = Build(MakeInstance(), {}, none);
  EXPECT_THAT(without, Not(Contains("virtio-serial-pci,id=vser0")));
}

TEST(CommandLineTest, KvmUsesHostCpu) {
  QemuLaunchOptions opts;
  opts.accel = "kvm";
  auto argv = Build(MakeInstance(), opts);
  EXPECT_EQ(ValueOf(argv, "-machine"), "q35,accel=kvm");
  EXPECT_EQ(ValueOf(argv, "-cpu"), "host");
}

TEST(CommandLineTest, MemoryRoundsUpToMiB) {
  Instance inst = MakeInstance();
  inst.config.memory_bytes = (64ull << 20) + 1;
  EXPECT_EQ(ValueOf(Build(inst, {}), "-m"), "65M");
}

TEST(CommandLineTest, CommasAreEscapedInKeyValueOptions) {
  Instance inst = MakeInstance();
  inst.config.name = "vm,x=1";
  inst.config.disks.push_back({"root", "/pool/a,b/root.qcow2", 1 << 30, ""});
  inst.config.nics.push_back({"eth0", "user", "52:54:00:12:34:56"});
  auto argv = Build(inst, {}, MakePaths("/run/a,b"));
  EXPECT_EQ(ValueOf(argv, "-name"), "guest=vm,,x=1,debug-threads=on");
  auto blockdevs = ValuesOf(argv, "-blockdev");
  ASSERT_EQ(blockdevs.size(), 2u);
  EXPECT_EQ(blockdevs[0],
            "driver=file,filename=/pool/a,,b/"
            "root.qcow2,node-name=file0,cache.direct=off");
  EXPECT_EQ(blockdevs[1], "driver=qcow2,file=file0,node-name=disk0");
  EXPECT_THAT(ValuesOf(argv, "-chardev")[0],
              HasSubstr("path=/run/a,,b/qmp.sock,"));
  EXPECT_THAT(ValuesOf(argv, "-chardev")[1],
              HasSubstr("logfile=/run/a,,b/console.log,"));
  // Plain-valued options take the path verbatim.
  EXPECT_EQ(ValueOf(argv, "-pidfile"), "/run/a,b/qemu.pid");
}

TEST(CommandLineTest, DiskBootGetsBootindex) {
  Instance inst = MakeInstance();
  inst.config.disks.push_back({"root", "/pool/root.qcow2", 1 << 30, ""});
  inst.config.disks.push_back({"data", "/pool/data.qcow2", 1 << 30, ""});
  auto devices = ValuesOf(Build(inst, {}), "-device");
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0],
            "virtio-blk-pci,drive=disk0,id=virtio-disk0,bootindex=1");
  EXPECT_EQ(devices[1], "virtio-blk-pci,drive=disk1,id=virtio-disk1");
}

TEST(CommandLineTest, KernelBoot) {
  Instance inst = MakeInstance();
  inst.config.kernel = "/images/vmlinuz";
  inst.config.initrd = "/images/initrd.img";
  inst.config.cmdline = "console=ttyS0 root=/dev/vda rw, quiet";
  inst.config.disks.push_back({"root", "/pool/root.qcow2", 1 << 30, ""});
  auto argv = Build(inst, {});
  EXPECT_EQ(ValueOf(argv, "-kernel"), "/images/vmlinuz");
  EXPECT_EQ(ValueOf(argv, "-initrd"), "/images/initrd.img");
  // -append is not key=value: no escaping.
  EXPECT_EQ(ValueOf(argv, "-append"), "console=ttyS0 root=/dev/vda rw, quiet");
  EXPECT_EQ(ValueOf(argv, "-device"),
            "virtio-blk-pci,drive=disk0,id=virtio-disk0");
}

TEST(CommandLineTest, InitrdWithoutKernelRejected) {
  Instance inst = MakeInstance();
  inst.config.initrd = "/images/initrd.img";
  auto argv = QemuCommandLine(inst, MakePaths(), {}).Build();
  ASSERT_FALSE(argv);
  EXPECT_EQ(argv.error().code(), ErrorCode::kInvalidArgument);
}

TEST(CommandLineTest, UserModeNicsWithoutHostListeners) {
  Instance inst = MakeInstance();
  inst.config.nics.push_back({"eth0", "user", "52:54:00:12:34:56"});
  inst.config.nics.push_back({"eth1", "user", "52:54:00:12:34:57"});
  auto argv = Build(inst, {});
  EXPECT_EQ(ValuesOf(argv, "-netdev"),
            (std::vector<std::string>{"user,id=net0", "user,id=net1"}));
  EXPECT_EQ(ValuesOf(argv, "-device"),
            (std::vector<std::string>{
                "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:12:34:56",
                "virtio-net-pci,netdev=net1,id=nic1,mac=52:54:00:12:34:57"}));
  for (const auto& arg : argv) {
    EXPECT_THAT(arg, Not(HasSubstr("hostfwd")));
    EXPECT_THAT(arg, Not(HasSubstr("tcp:")));
    EXPECT_THAT(arg, Not(HasSubstr("host=")));
    EXPECT_THAT(arg, Not(HasSubstr("port=")));
    EXPECT_THAT(arg, Not(HasSubstr("telnet")));
  }
  // VNC only on a unix socket, never TCP.
  for (const auto& vnc : ValuesOf(argv, "-vnc"))
    EXPECT_EQ(vnc.rfind("unix:/", 0), 0u) << vnc;
  EXPECT_THAT(argv, Not(Contains("-spice")));
  EXPECT_THAT(argv, Not(Contains("-gdb")));
}

TEST(CommandLineTest, UnsupportedNicTypeRejected) {
  Instance inst = MakeInstance();
  inst.config.nics.push_back({"eth0", "tap", "52:54:00:12:34:56"});
  auto argv = QemuCommandLine(inst, MakePaths(), {}).Build();
  ASSERT_FALSE(argv);
  EXPECT_THAT(argv.error().message(), HasSubstr("tap"));
}

TEST(CommandLineTest, SandboxDeniesPrivilegeChangesWithoutRunas) {
  auto argv = Build(MakeInstance(), {});
  EXPECT_EQ(ValueOf(argv, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
            "resourcecontrol=deny");
}

TEST(CommandLineTest, RunasAllowsSetuidUnderSandbox) {
  QemuLaunchOptions opts;
  opts.run_as_user = "nobody";
  auto argv = Build(MakeInstance(), opts);
  EXPECT_EQ(ValueOf(argv, "-runas"), "nobody");
  EXPECT_EQ(ValueOf(argv, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=allow,spawn=deny,"
            "resourcecontrol=deny");
}

TEST(CommandLineTest, SandboxCanBeDisabled) {
  QemuLaunchOptions opts;
  opts.sandbox = false;
  opts.qemu_binary = "/opt/qemu/bin/qemu-system-x86_64";
  auto argv = Build(MakeInstance(), opts);
  EXPECT_EQ(argv[0], "/opt/qemu/bin/qemu-system-x86_64");
  EXPECT_THAT(argv, Not(Contains("-sandbox")));
}

TEST(CommandLineTest, RejectsBadSizes) {
  Instance inst = MakeInstance();
  inst.config.cpus = 0;
  EXPECT_FALSE(QemuCommandLine(inst, MakePaths(), {}).Build());
  inst = MakeInstance();
  inst.config.memory_bytes = 1 << 20;
  EXPECT_FALSE(QemuCommandLine(inst, MakePaths(), {}).Build());
}

TEST(CommandLineTest, EscapeHelper) {
  EXPECT_EQ(QemuEscape("a,b,,c"), "a,,b,,,,c");
  EXPECT_EQ(QemuEscape("plain"), "plain");
}

TEST(CommandLineTest, HotplugPorts) {
  Instance inst = MakeInstance();
  inst.config.disks.push_back({"root", "/pool/root.qcow2", 1 << 30, ""});
  DiskConfig vol{"data", "/pool/volumes/data.qcow2", 1 << 30, ""};
  vol.pool = "default";
  vol.volume = "data";
  inst.config.disks.push_back(vol);
  auto argv = Build(inst, {});
  auto devices = ValuesOf(argv, "-device", /*root_ports=*/true);
  // Four free ports, then one for the volume, all before the disks use them.
  ASSERT_EQ(devices.size(), 7u);
  EXPECT_EQ(devices[0], "pcie-root-port,id=hp0,chassis=1");
  EXPECT_EQ(devices[3], "pcie-root-port,id=hp3,chassis=4");
  EXPECT_EQ(devices[4], "pcie-root-port,id=vd1,chassis=5");
  EXPECT_EQ(devices[5],
            "virtio-blk-pci,drive=disk0,id=virtio-disk0,bootindex=1");
  // A volume sits behind its own port so it can be unplugged while running.
  EXPECT_EQ(devices[6], "virtio-blk-pci,drive=disk1,id=virtio-disk1,bus=vd1");
}

}  // namespace
}  // namespace vireo
