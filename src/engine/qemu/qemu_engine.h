#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/fd.h"
#include "core/vm_engine.h"
#include "engine/qemu/accel.h"
#include "engine/qemu/command_line.h"
#include "engine/qemu/event_queue.h"

namespace vireo {

class QmpClient;

// Runs each VM as a qemu-system-x86_64 process in its own session (so VMs
// outlive vireod), controls it over QMP, and reports exits and pause/resume
// through the event sink. One watcher thread polls every VM's pidfd.
// Destroying the engine leaves the VMs running; a later engine Adopt()s them.
class QemuEngine : public VmEngine {
 public:
  struct Options {
    std::string
        run_dir;  // root of per-VM runtime dirs (<run_dir>/<instance id>)
    std::string qemu_binary = "qemu-system-x86_64";
    std::string accel_override;  // "", "kvm" or "tcg"
    std::string run_as_user;     // empty: QEMU keeps our uid (-runas otherwise)
    bool sandbox = true;         // QEMU's seccomp filter (-sandbox on,...)
  };

  static Result<std::unique_ptr<QemuEngine>> Create(Options options);
  ~QemuEngine() override;

  void SetEventSink(EventSink sink) override;
  std::string Accelerator() const override { return accel_.accel; }
  std::string AcceleratorReason() const override { return accel_.reason; }
  VmPaths PathsFor(const Instance& instance) const override;

  Result<int> Start(const Instance& instance,
                    const std::vector<int>& tap_fds = {}) override;
  Result<bool> Adopt(const Instance& instance) override;
  Status Powerdown(const std::string& name) override;
  Status Kill(const std::string& name) override;
  Status Pause(const std::string& name) override;
  Status Resume(const std::string& name) override;
  bool WaitExit(const std::string& name, int timeout_ms) override;
  Result<std::string> QueryStatus(const std::string& name) override;
  Result<Json> Qmp(const std::string& name, const std::string& command,
                   const Json& arguments) override;
  Result<Json> GuestAgent(const std::string& name, const std::string& command,
                          const Json& arguments,
                          std::chrono::milliseconds timeout) override;
  bool IsRunning(const std::string& name) override;
  Result<std::string> Screenshot(const std::string& name) override;

 private:
  struct Vm;

  QemuEngine(Options options, AccelChoice accel, UniqueFd wake_fd);
  Result<int> StartReserved(const Instance& instance,
                            const std::vector<int>& tap_fds);
  Result<bool> AdoptReserved(const Instance& instance);
  // Reserves a name while a Start/Adopt is in progress.
  Status Reserve(const std::string& name);
  void Unreserve(const std::string& name);
  // Wires QMP events to the sink, checks the VM answers, and starts watching.
  Status Attach(const std::shared_ptr<Vm>& vm, std::unique_ptr<QmpClient> qmp);
  void OnQmpEvent(const std::weak_ptr<Vm>& weak_vm, const std::string& event,
                  const Json& data);
  // Kills a VM whose Start failed and builds the error with QEMU's stderr.
  Error FailStart(const std::shared_ptr<Vm>& vm, Error error);
  std::shared_ptr<Vm> Find(const std::string& name);
  Result<std::shared_ptr<QmpClient>> QmpFor(const std::string& name);
  void WatchLoop();
  void HandleExit(const std::shared_ptr<Vm>& vm);
  void Wake();

  const Options options_;
  const AccelChoice accel_;
  QemuLaunchOptions launch_;
  UniqueFd wake_fd_;  // eventfd: the VM set changed or we are stopping

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Vm>> vms_;  // by instance name
  std::set<std::string> reserved_;
  bool stopping_ = false;

  VmEventQueue events_;
  std::thread watcher_;
};

}  // namespace vireo
