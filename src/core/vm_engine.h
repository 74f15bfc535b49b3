#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/instance.h"

namespace vireo {

// Something the hypervisor reported about a VM, asynchronously.
struct VmEvent {
  enum class Kind {
    kPaused,   // QMP STOP
    kResumed,  // QMP RESUME
    kReset,    // QMP RESET
    kExited,   // the VM process is gone
  };
  Kind kind;
  std::string instance;  // instance name
  // For kExited: true when the guest powered off or the engine was asked to
  // stop it; false for a crash or an outside kill.
  bool clean = false;
  std::string reason;  // human-readable, e.g. "killed by signal 9"
};

// Per-VM runtime file locations, derived from the instance id.
struct VmPaths {
  std::string dir;  // per-instance runtime directory
  std::string qmp_socket;
  std::string serial_socket;
  std::string vnc_socket;  // QEMU's VNC server (graphical console)
  // The guest agent's channel (virtio-serial port org.qemu.guest_agent.0).
  std::string guest_agent_socket;
  std::string console_log;
  std::string pid_file;
  std::string qemu_log;  // QEMU's own stderr
};

// The hypervisor as the core sees it. Implemented by engine/qemu.
// Thread-safe: every method may be called from any thread.
class VmEngine {
 public:
  using EventSink = std::function<void(const VmEvent&)>;
  virtual ~VmEngine() = default;

  // Called for every asynchronous event; set once before any Start/Adopt.
  virtual void SetEventSink(EventSink sink) = 0;
  // The accelerator in use ("kvm" or "tcg") and why it was chosen.
  virtual std::string Accelerator() const = 0;
  virtual std::string AcceleratorReason() const = 0;
  virtual VmPaths PathsFor(const Instance& instance) const = 0;

  // Launches the VM and returns its pid once QMP answers and the guest runs.
  // On failure nothing is left running and the error carries QEMU's stderr.
  // tap_fds: one open tap per "network" NIC, in NIC order (kept open in the
  // VM process).
  [[nodiscard]] virtual Result<int> Start(
      const Instance& instance, const std::vector<int>& tap_fds = {}) = 0;
  // Re-attaches to a VM launched by an earlier vireod. Returns false if the
  // process is gone (its runtime files are cleaned up).
  [[nodiscard]] virtual Result<bool> Adopt(const Instance& instance) = 0;
  // Asks the guest to power off (ACPI). Returns immediately.
  [[nodiscard]] virtual Status Powerdown(const std::string& name) = 0;
  // Kills the process and waits until it is gone. kExited (clean) follows.
  [[nodiscard]] virtual Status Kill(const std::string& name) = 0;
  [[nodiscard]] virtual Status Pause(const std::string& name) = 0;
  [[nodiscard]] virtual Status Resume(const std::string& name) = 0;
  // Waits until the VM process exits or the timeout passes (false).
  virtual bool WaitExit(const std::string& name, int timeout_ms) = 0;
  // QMP "query-status" status string ("running", "paused", ...).
  [[nodiscard]] virtual Result<std::string> QueryStatus(
      const std::string& name) = 0;
  // Runs any QMP command (for later features: hot-plug, snapshots, ...).
  [[nodiscard]] virtual Result<Json> Qmp(const std::string& name,
                                         const std::string& command,
                                         const Json& arguments) = 0;
  // Runs a qemu-guest-agent command in the guest and returns its "return"
  // value. An agent that does not answer the initial guest-sync within
  // ~1.5 s is absent (kTimeout; kNotFound when the VM has no agent channel),
  // so probing costs little; `timeout` bounds the command itself. Calls for
  // one VM are serialized.
  [[nodiscard]] virtual Result<Json> GuestAgent(
      const std::string& name, const std::string& command,
      const Json& arguments, std::chrono::milliseconds timeout) = 0;
  virtual bool IsRunning(const std::string& name) = 0;
  // The current screen as PNG bytes (QMP screendump).
  [[nodiscard]] virtual Result<std::string> Screenshot(
      const std::string& name) = 0;
};

}  // namespace vireo
