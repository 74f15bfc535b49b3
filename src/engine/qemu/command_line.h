#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "core/instance.h"
#include "core/vm_engine.h"

namespace vireo {

struct QemuLaunchOptions {
  std::string qemu_binary = "qemu-system-x86_64";
  std::string accel = "tcg";  // "kvm" or "tcg"
  std::string run_as_user;    // empty: QEMU keeps our uid
  bool sandbox = true;        // seccomp (-sandbox on,...)
  std::vector<int> tap_fds;   // open taps for "network" NICs, in NIC order
};

// Escapes a value for QEMU's key=value option syntax (',' -> ',,').
std::string QemuEscape(std::string_view value);

// Builds the QEMU argv for an instance. Every option and value is its own
// argv element (nothing goes through a shell), and values inside key=value
// option strings are escaped, so user-supplied names and paths cannot
// inject options. No option opens a TCP listener: QMP, the serial console,
// the VNC display and the guest agent channel are unix sockets in the VM's
// runtime directory.
class QemuCommandLine {
 public:
  QemuCommandLine(const Instance& instance, const VmPaths& paths,
                  const QemuLaunchOptions& options)
      : instance_(instance), paths_(paths), options_(options) {}

  [[nodiscard]] Result<std::vector<std::string>> Build() const;

 private:
  // PCIe root ports: hp0..hp3 stay free for volume hot-plug, vd<i> holds
  // disk i when it is a pool volume (so it can be unplugged while running).
  void AddHotplugPorts(std::vector<std::string>* argv) const;
  Status AddDisks(std::vector<std::string>* argv) const;
  Status AddNics(std::vector<std::string>* argv) const;
  Status AddFirmware(std::vector<std::string>* argv) const;
  // virtio-serial port for qemu-guest-agent, on paths_.guest_agent_socket.
  void AddGuestAgentChannel(std::vector<std::string>* argv) const;

  const Instance& instance_;
  const VmPaths& paths_;
  const QemuLaunchOptions& options_;
};

}  // namespace vireo
