#include "engine/qemu/command_line.h"

#include "core/install_media.h"
#include "engine/qemu/device_profile.h"

namespace vireo {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

void Push(std::vector<std::string>* argv,
          std::initializer_list<std::string> args) {
  argv->insert(argv->end(), args);
}

std::string SandboxSpec(bool drops_privileges) {
  // -runas calls setuid()/setgid() after the seccomp filter is installed,
  // so with elevateprivileges=deny QEMU dies with SIGSYS (checked on QEMU
  // 7.2). Allow it only when we ask QEMU to drop privileges.
  return std::string("on,obsolete=deny,elevateprivileges=") +
         (drops_privileges ? "allow" : "deny") +
         ",spawn=deny,resourcecontrol=deny";
}

}  // namespace

std::string QemuEscape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out.push_back(c);
    if (c == ',') out.push_back(',');
  }
  return out;
}

Result<std::vector<std::string>> QemuCommandLine::Build() const {
  const InstanceConfig& c = instance_.config;
  if (c.name.empty())
    return Err(ErrorCode::kInvalidArgument, "instance has no name");
  if (c.cpus < 1)
    return Err(ErrorCode::kInvalidArgument, "cpus must be at least 1");
  if (c.memory_bytes < 16 * kMiB) {
    return Err(ErrorCode::kInvalidArgument, "memory must be at least 16 MiB");
  }
  if (options_.accel != "kvm" && options_.accel != "tcg") {
    return Err(ErrorCode::kInvalidArgument,
               "unknown accelerator " + options_.accel);
  }
  if (c.kernel.empty() && (!c.initrd.empty() || !c.cmdline.empty())) {
    return Err(ErrorCode::kInvalidArgument,
               "initrd or cmdline given without a kernel");
  }
  uint64_t mib = (c.memory_bytes + kMiB - 1) / kMiB;

  std::vector<std::string> argv;
  Push(&argv, {options_.qemu_binary});
  Push(&argv, {"-name", "guest=" + QemuEscape(c.name) + ",debug-threads=on"});
  Push(&argv, {"-machine", "q35,accel=" + options_.accel});
  Push(&argv, {"-cpu", options_.accel == "kvm" ? "host" : "max"});
  Push(&argv, {"-smp", std::to_string(c.cpus)});
  Push(&argv, {"-m", std::to_string(mib) + "M"});
  Push(&argv,
       {"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none"});
  Push(&argv, {"-chardev",
               "socket,id=qmp,path=" + QemuEscape(paths_.qmp_socket) +
                   ",server=on,wait=off",
               "-mon", "chardev=qmp,mode=control"});
  Push(&argv, {"-chardev",
               "socket,id=serial0,path=" + QemuEscape(paths_.serial_socket) +
                   ",server=on,wait=off,logfile=" +
                   QemuEscape(paths_.console_log) + ",logappend=on",
               "-serial", "chardev:serial0"});
  // The graphical console: QEMU's VNC server on a unix socket only (vireod
  // relays it to authenticated WebSocket clients). force-shared: several
  // viewers may watch one screen without kicking each other off.
  Push(&argv, {"-vnc", "unix:" + QemuEscape(paths_.vnc_socket) +
                           ",share=force-shared"});
  Push(&argv, {"-pidfile", paths_.pid_file});
  // -kernel/-initrd/-append take their value verbatim (no key=value parsing).
  if (!c.kernel.empty()) {
    Push(&argv, {"-kernel", c.kernel});
    if (!c.initrd.empty()) Push(&argv, {"-initrd", c.initrd});
    if (!c.cmdline.empty()) Push(&argv, {"-append", c.cmdline});
  }
  TRY(AddFirmware(&argv));
  AddHotplugPorts(&argv);
  TRY(AddDisks(&argv));
  TRY(AddNics(&argv));
  {
    ASSIGN_OR_RETURN(DeviceProfile profile, ProfileFor(c.os_type));
    std::vector<std::string> extra = ProfileExtraArgs(profile);
    argv.insert(argv.end(), extra.begin(), extra.end());
  }
  // Last, so the devices above keep the PCI addresses they had before
  // (guests installed earlier see the same hardware).
  AddGuestAgentChannel(&argv);
  if (options_.sandbox) {
    Push(&argv, {"-sandbox", SandboxSpec(!options_.run_as_user.empty())});
  }
  if (!options_.run_as_user.empty())
    Push(&argv, {"-runas", options_.run_as_user});
  return argv;
}

void QemuCommandLine::AddHotplugPorts(std::vector<std::string>* argv) const {
  // Devices on q35's root bus cannot be unplugged; a root port per slot can.
  // Chassis numbers only need to be distinct.
  constexpr int kHotplugPorts = 4;  // core/disk_hotplug.h DiskHotplug::kPorts
  int chassis = 1;
  for (int i = 0; i < kHotplugPorts; ++i) {
    Push(argv, {"-device", "pcie-root-port,id=hp" + std::to_string(i) +
                               ",chassis=" + std::to_string(chassis++)});
  }
  const auto& disks = instance_.config.disks;
  for (size_t i = 0; i < disks.size(); ++i) {
    if (disks[i].volume.empty()) continue;
    Push(argv, {"-device", "pcie-root-port,id=vd" + std::to_string(i) +
                               ",chassis=" + std::to_string(chassis++)});
  }
}

Status QemuCommandLine::AddDisks(std::vector<std::string>* argv) const {
  const InstanceConfig& c = instance_.config;
  ASSIGN_OR_RETURN(DeviceProfile profile, ProfileFor(c.os_type));
  AhciPorts ahci;
  // Firmware boot order: CD-ROMs (install media) first, then the first hard
  // disk, so a VM boots from its disk once the ISO is ejected.
  int cdroms = 0;
  for (const DiskConfig& d : c.disks) cdroms += d.media == "cdrom";
  int next_cd_boot = 1;
  bool disk_boot_given = false;
  for (size_t i = 0; i < c.disks.size(); ++i) {
    const DiskConfig& d = c.disks[i];
    if (d.path.empty()) {
      return Err(ErrorCode::kInvalidArgument,
                 "disk " + d.name + " has no path");
    }
    if (d.format != "qcow2" && d.format != "raw") {
      return Err(ErrorCode::kInvalidArgument,
                 "disk " + d.name + ": unsupported format '" + d.format + "'");
    }
    if (d.media != "disk" && d.media != "cdrom") {
      return Err(ErrorCode::kInvalidArgument,
                 "disk " + d.name + ": unsupported media '" + d.media + "'");
    }
    const bool cdrom = d.media == "cdrom";
    std::string n = std::to_string(i);
    // CD-ROM nodes are named after the disk, so a live eject finds them.
    std::string node = cdrom ? CdromNodeName(d) : "disk" + n;
    std::string file_node = cdrom ? node + "-file" : "file" + n;
    // Block devices (LVM volumes) need the host_device driver.
    std::string protocol =
        d.path.rfind("/dev/", 0) == 0 ? "host_device" : "file";
    std::string ro = d.readonly || cdrom ? ",read-only=on" : "";
    Push(argv, {"-blockdev",
                "driver=" + protocol + ",filename=" + QemuEscape(d.path) +
                    ",node-name=" + file_node + ",cache.direct=off" + ro});
    Push(argv, {"-blockdev", "driver=" + d.format + ",file=" + file_node +
                                 ",node-name=" + node + ro});
    std::string device;
    std::string boot;
    if (cdrom) {
      ASSIGN_OR_RETURN(std::string port, ahci.Next("cdrom " + d.name));
      device =
          "ide-cd,bus=" + port + ",drive=" + node + ",id=" + CdromDeviceId(d);
      if (c.kernel.empty()) boot = std::to_string(next_cd_boot++);
    } else {
      ASSIGN_OR_RETURN(std::string bus, DiskBusFor(profile, d));
      if (bus == "virtio") {
        device = "virtio-blk-pci,drive=disk" + n + ",id=virtio-disk" + n;
        // Pool volumes sit on their own root port so they can be unplugged
        // while the VM runs (AddHotplugPorts).
        if (!d.volume.empty()) device += ",bus=vd" + n;
      } else {
        ASSIGN_OR_RETURN(std::string port, ahci.Next("disk " + d.name));
        device = "ide-hd,bus=" + port + ",drive=disk" + n + ",id=sata-disk" + n;
      }
      if (c.kernel.empty() && !disk_boot_given) {
        boot = std::to_string(cdroms + 1);
        disk_boot_given = true;
      }
    }
    if (!boot.empty()) device += ",bootindex=" + boot;
    Push(argv, {"-device", device});
  }
  return Ok();
}

void QemuCommandLine::AddGuestAgentChannel(
    std::vector<std::string>* argv) const {
  // qemu-guest-agent in the guest opens the virtio-serial port by this
  // name; vireod talks to it through the socket (QEMU creates it before
  // -runas, like the QMP and serial sockets, so the root-only run dir is
  // fine). Every VM gets it: with no agent in the guest it is an idle port.
  if (paths_.guest_agent_socket.empty()) return;
  Push(argv, {"-device", "virtio-serial-pci,id=vser0"});
  Push(argv, {"-chardev",
              "socket,id=qga0,path=" + QemuEscape(paths_.guest_agent_socket) +
                  ",server=on,wait=off"});
  Push(argv, {"-device",
              "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_"
              "agent.0"});
}

Status QemuCommandLine::AddFirmware(std::vector<std::string>* argv) const {
  const InstanceConfig& c = instance_.config;
  if (c.firmware == "bios") return Ok();  // SeaBIOS, QEMU's default
  if (c.firmware != "uefi") {
    return Err(ErrorCode::kInvalidArgument,
               "unknown firmware '" + c.firmware + "' (expected bios or uefi)");
  }
  if (c.uefi_vars.empty() || c.uefi_vars.front() != '/') {
    return Err(ErrorCode::kInvalidArgument,
               "uefi firmware needs the VM's variable store (uefi_vars)");
  }
  // OVMF: read-only code, and the VM's own writable variable store.
  Push(argv, {"-drive", std::string("if=pflash,format=raw,unit=0,readonly=on,"
                                    "file=") +
                            QemuEscape(kOvmfCode)});
  Push(argv, {"-drive",
              "if=pflash,format=raw,unit=1,file=" + QemuEscape(c.uefi_vars)});
  return Ok();
}

Status QemuCommandLine::AddNics(std::vector<std::string>* argv) const {
  const InstanceConfig& c = instance_.config;
  ASSIGN_OR_RETURN(DeviceProfile profile, ProfileFor(c.os_type));
  size_t taps = 0;
  for (size_t i = 0; i < c.nics.size(); ++i) {
    const NicConfig& nic = c.nics[i];
    std::string n = std::to_string(i);
    if (nic.type == "network") {
      // Vireo opened the tap and attached it to the bridge; QEMU (maybe
      // unprivileged) only inherits the fd.
      if (taps >= options_.tap_fds.size())
        return Err(ErrorCode::kInvalidArgument,
                   "nic " + nic.name + ": no tap prepared");
      Push(argv, {"-netdev", "tap,id=net" + n + ",fd=" +
                                 std::to_string(options_.tap_fds[taps++])});
    } else if (nic.type == "user") {
      // No hostfwd, so QEMU never listens on the host.
      Push(argv, {"-netdev", "user,id=net" + n});
    } else {
      return Err(ErrorCode::kInvalidArgument,
                 "nic " + nic.name + ": unsupported type '" + nic.type + "'");
    }
    ASSIGN_OR_RETURN(std::string driver, NicDriverFor(profile, nic));
    std::string device = driver + ",netdev=net" + n + ",id=nic" + n;
    if (!nic.mac.empty()) device += ",mac=" + QemuEscape(nic.mac);
    Push(argv, {"-device", device});
  }
  return Ok();
}

}  // namespace vireo
