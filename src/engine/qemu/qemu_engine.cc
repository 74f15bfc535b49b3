#include "engine/qemu/qemu_engine.h"

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/eventfd.h>
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
#include <sys/stat.h>
}

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "common/process.h"
#include "engine/qemu/guest_agent.h"
#include "engine/qemu/qmp_client.h"
#include "engine/qemu/runtime_files.h"
#include "engine/qemu/screenshot.h"

namespace vireo {

using std::chrono::milliseconds;

struct QemuEngine::Vm {
  std::string name;
  VmPaths paths;
  std::unique_ptr<Process> process;  // pidfd() is safe to use from any thread
  bool adopted = false;              // not our child: exit status unknown
  uint64_t log_offset = 0;  // where this run's stderr starts in qemu.log
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> guest_shutdown{false};

  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<QmpClient> qmp;  // guarded by mu; null once exited
  bool exited = false;             // guarded by mu
  // One guest agent conversation at a time: QEMU serves one client per
  // chardev, and a second connection would wait out its sync timeout.
  std::mutex agent_mu;

  bool WaitExited(milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return exited; });
  }
  bool HasExited() const {
    pollfd p{process->pidfd(), POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
};

namespace {

constexpr milliseconds kStartQmpTimeout{10000};
constexpr milliseconds kAdoptQmpTimeout{5000};

// The QMP chardev option as it appears in QEMU's argv: identifies the QEMU
// of one instance in /proc/PID/cmdline.
std::string QmpPathArg(const VmPaths& paths) {
  return "path=" + QemuEscape(paths.qmp_socket) + ",";
}

Status CheckUser(const std::string& user) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    return Err(ErrorCode::kInvalidArgument,
               "run-as user '" + user + "' does not exist");
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<QemuEngine>> QemuEngine::Create(Options options) {
  if (options.run_dir.empty() || options.run_dir[0] != '/') {
    return Err(ErrorCode::kInvalidArgument,
               "qemu engine: run_dir must be an absolute path");
  }
  while (options.run_dir.size() > 1 && options.run_dir.back() == '/')
    options.run_dir.pop_back();
  TRY_CTX(MakeDirs(options.run_dir), "qemu engine");
  ASSIGN_OR_RETURN(AccelChoice accel,
                   ChooseAccelerator(options.accel_override));
  TRY_CTX(RunCommandOk({options.qemu_binary, "--version"},
                       std::chrono::seconds(20)),
          "qemu engine: cannot run " + options.qemu_binary);
  if (!options.run_as_user.empty())
    TRY_CTX(CheckUser(options.run_as_user), "qemu engine");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoErr("qemu engine: eventfd");
  LOG_INFO("qemu engine: accelerator {} ({})", accel.accel, accel.reason);
  return std::unique_ptr<QemuEngine>(
      new QemuEngine(std::move(options), accel, std::move(wake)));
}

QemuEngine::QemuEngine(Options options, AccelChoice accel, UniqueFd wake_fd)
    : options_(std::move(options)),
      accel_(std::move(accel)),
      wake_fd_(std::move(wake_fd)) {
  launch_.qemu_binary = options_.qemu_binary;
  launch_.accel = accel_.accel;
  launch_.run_as_user = options_.run_as_user;
  launch_.sandbox = options_.sandbox;
  watcher_ = std::thread([this] { WatchLoop(); });
}

QemuEngine::~QemuEngine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  Wake();
  watcher_.join();
  // The VMs keep running; only our connections to them close. Closing the
  // QMP clients joins their readers before events_ (which they feed) dies.
  std::map<std::string, std::shared_ptr<Vm>> vms;
  {
    std::lock_guard lock(mu_);
    vms.swap(vms_);
  }
  for (auto& [name, vm] : vms) {
    std::shared_ptr<QmpClient> qmp;
    {
      std::lock_guard lock(vm->mu);
      qmp = std::move(vm->qmp);
    }
  }
}

void QemuEngine::SetEventSink(EventSink sink) {
  events_.SetSink(std::move(sink));
}

VmPaths QemuEngine::PathsFor(const Instance& instance) const {
  VmPaths p;
  p.dir = options_.run_dir + "/" + instance.id;
  p.qmp_socket = p.dir + "/qmp.sock";
  p.serial_socket = p.dir + "/serial.sock";
  p.vnc_socket = p.dir + "/vnc.sock";
  p.guest_agent_socket = p.dir + "/qga.sock";
  p.console_log = p.dir + "/console.log";
  p.pid_file = p.dir + "/qemu.pid";
  p.qemu_log = p.dir + "/qemu.log";
  return p;
}

Status QemuEngine::Reserve(const std::string& name) {
  std::lock_guard lock(mu_);
  if (vms_.count(name) || reserved_.count(name)) {
    return Err(ErrorCode::kAlreadyExists, "VM " + name + " is already running");
  }
  reserved_.insert(name);
  return Ok();
}

void QemuEngine::Unreserve(const std::string& name) {
  std::lock_guard lock(mu_);
  reserved_.erase(name);
}

Result<int> QemuEngine::Start(const Instance& instance,
                              const std::vector<int>& tap_fds) {
  TRY_CTX(Reserve(instance.name()), "start " + instance.name());
  auto result = StartReserved(instance, tap_fds);
  Unreserve(instance.name());
  if (!result) result.error().WithContext("start " + instance.name());
  return result;
}

Result<int> QemuEngine::StartReserved(const Instance& instance,
                                      const std::vector<int>& tap_fds) {
  TRY(ValidateInstanceId(instance.id));
  VmPaths paths = PathsFor(instance);
  TRY(CheckSocketPath(paths.qmp_socket));
  TRY(CheckSocketPath(paths.serial_socket));
  TRY(CheckSocketPath(paths.vnc_socket));
  TRY(CheckSocketPath(paths.guest_agent_socket));
  QemuLaunchOptions launch = launch_;
  launch.tap_fds = tap_fds;
  ASSIGN_OR_RETURN(auto argv, QemuCommandLine(instance, paths, launch).Build());
  TRY(MakeDirs(paths.dir));
  // Only vireod reaches the sockets (VNC has no password of its own). QEMU
  // binds them before -runas drops its privileges, and needs no path in
  // here afterwards (screenshots go through a passed fd).
  ::chmod(paths.dir.c_str(), 0700);
  // A QEMU from an earlier vireod that was never adopted still owns the
  // sockets; removing them would orphan it.
  if (auto old_pid = ReadPidFile(paths.pid_file);
      old_pid && ProcessArgsContain(*old_pid, QmpPathArg(paths))) {
    return Err(ErrorCode::kAlreadyExists,
               "a QEMU for this instance is still running (pid " +
                   std::to_string(*old_pid) + "); adopt it first");
  }
  RemoveRuntimeFiles(paths);  // left over by a QEMU that crashed
  TRY(AppendLine(paths.qemu_log, "=== vireo: starting " + instance.name() +
                                     " (" + accel_.accel + ")"));

  auto vm = std::make_shared<Vm>();
  vm->name = instance.name();
  vm->paths = paths;
  vm->log_offset = FileSize(paths.qemu_log);
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.stdout_path = paths.qemu_log;
  spawn.stderr_path = paths.qemu_log;
  spawn.new_session = true;
  spawn.keep_fds = tap_fds;
  ASSIGN_OR_RETURN(vm->process, Process::Spawn(spawn));

  auto qmp = QmpClient::Connect(paths.qmp_socket, kStartQmpTimeout,
                                [&vm] { return vm->HasExited(); });
  if (!qmp) return tl::unexpected(FailStart(vm, qmp.error()));
  if (auto attached = Attach(vm, std::move(*qmp)); !attached) {
    return tl::unexpected(FailStart(vm, attached.error()));
  }
  LOG_INFO("qemu: started {} (pid {})", vm->name, vm->process->pid());
  return static_cast<int>(vm->process->pid());
}

Error QemuEngine::FailStart(const std::shared_ptr<Vm>& vm, Error error) {
  vm->stop_requested = true;
  ::pidfd_send_signal(vm->process->pidfd(), SIGKILL, nullptr, 0);
  auto status = vm->process->WaitFor(milliseconds(5000));
  {
    std::lock_guard lock(vm->mu);
    vm->qmp.reset();
    vm->exited = true;
  }
  RemoveRuntimeFiles(vm->paths);
  std::string stderr_tail = ReadTail(vm->paths.qemu_log, vm->log_offset);
  // QEMU exiting on its own (bad option, missing file) says more than the
  // QMP error that made us notice.
  if (status && status->signal != SIGKILL) {
    error = Error(ErrorCode::kFailedPrecondition, "QEMU " + status->Describe());
  }
  if (!stderr_tail.empty())
    error = Error(error.code(), error.message() + ": " + stderr_tail);
  return error;
}

Status QemuEngine::Attach(const std::shared_ptr<Vm>& vm,
                          std::unique_ptr<QmpClient> client) {
  std::shared_ptr<QmpClient> qmp = std::move(client);
  std::weak_ptr<Vm> weak = vm;
  qmp->SetEventHandler(
      [this, weak](const std::string& event, const Json& data) {
        OnQmpEvent(weak, event, data);
      });
  qmp->SetCloseHandler(
      [name = vm->name] { LOG_DEBUG("qmp: connection to {} closed", name); });
  {
    std::lock_guard lock(vm->mu);
    vm->qmp = qmp;
  }
  ASSIGN_OR_RETURN(Json status, qmp->Execute("query-status"));
  if (!status.is_object() || !status.contains("status")) {
    return Err(ErrorCode::kInternal, "qmp: query-status reply has no status");
  }
  {
    std::lock_guard lock(mu_);
    vms_[vm->name] = vm;
  }
  Wake();
  return Ok();
}

void QemuEngine::OnQmpEvent(const std::weak_ptr<Vm>& weak_vm,
                            const std::string& event, const Json& data) {
  auto vm = weak_vm.lock();
  if (!vm) return;
  if (event == "SHUTDOWN") {
    // Only a guest-initiated power-off is clean; "host-signal" means someone
    // outside vireo terminated QEMU.
    auto guest = data.is_object() ? data.find("guest") : data.end();
    if (guest != data.end() && guest->is_boolean() && guest->get<bool>()) {
      vm->guest_shutdown = true;
    }
    return;
  }
  VmEvent ev;
  ev.instance = vm->name;
  if (event == "STOP") {
    ev.kind = VmEvent::Kind::kPaused;
  } else if (event == "RESUME") {
    ev.kind = VmEvent::Kind::kResumed;
  } else if (event == "RESET") {
    ev.kind = VmEvent::Kind::kReset;
  } else {
    return;
  }
  events_.Push(std::move(ev));
}

Result<bool> QemuEngine::Adopt(const Instance& instance) {
  {
    std::lock_guard lock(mu_);
    if (vms_.count(instance.name())) return true;
  }
  TRY_CTX(Reserve(instance.name()), "adopt " + instance.name());
  auto result = AdoptReserved(instance);
  Unreserve(instance.name());
  if (!result) result.error().WithContext("adopt " + instance.name());
  return result;
}

Result<bool> QemuEngine::AdoptReserved(const Instance& instance) {
  TRY(ValidateInstanceId(instance.id));
  VmPaths paths = PathsFor(instance);
  auto gone = [&paths](const std::string& why) {
    LOG_INFO("qemu: not adopting {}: {}", paths.dir, why);
    RemoveRuntimeFiles(paths);
    return false;
  };
  auto pid = ReadPidFile(paths.pid_file);
  if (!pid) return gone("no pid file");
  auto process = Process::Adopt(*pid);
  if (!process) return gone("process " + std::to_string(*pid) + " is gone");
  // Checked after pidfd_open: the pidfd pins the process we verified.
  if (!ProcessArgsContain(*pid, QmpPathArg(paths))) {
    return gone("pid " + std::to_string(*pid) + " is not this VM's QEMU");
  }
  auto vm = std::make_shared<Vm>();
  vm->name = instance.name();
  vm->paths = paths;
  vm->adopted = true;
  vm->process = std::move(*process);
  if (vm->HasExited()) return gone("process exited");
  auto qmp = QmpClient::Connect(paths.qmp_socket, kAdoptQmpTimeout,
                                [&vm] { return vm->HasExited(); });
  if (!qmp) {
    if (vm->HasExited()) return gone("process exited");
    return tl::unexpected(qmp.error());
  }
  if (auto attached = Attach(vm, std::move(*qmp)); !attached) {
    {
      std::lock_guard lock(vm->mu);
      vm->qmp.reset();
    }
    if (vm->HasExited()) return gone("process exited");
    return tl::unexpected(attached.error());
  }
  LOG_INFO("qemu: adopted {} (pid {})", vm->name, *pid);
  return true;
}

std::shared_ptr<QemuEngine::Vm> QemuEngine::Find(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : it->second;
}

Result<std::shared_ptr<QmpClient>> QemuEngine::QmpFor(const std::string& name) {
  auto vm = Find(name);
  if (vm) {
    std::lock_guard lock(vm->mu);
    if (vm->qmp) return vm->qmp;
  }
  return Err(ErrorCode::kNotFound, "VM " + name + " is not running");
}

Status QemuEngine::Powerdown(const std::string& name) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  TRY_CTX(qmp->Execute("system_powerdown"), "powerdown " + name);
  return Ok();
}

Status QemuEngine::Kill(const std::string& name) {
  auto vm = Find(name);
  if (!vm)
    return Err(ErrorCode::kNotFound, "kill " + name + ": VM is not running");
  vm->stop_requested = true;
  std::shared_ptr<QmpClient> qmp;
  {
    std::lock_guard lock(vm->mu);
    qmp = vm->qmp;
  }
  // "quit" lets QEMU flush its disk caches; SIGKILL is the fallback for a
  // QEMU that does not answer.
  if (qmp) (void)qmp->Execute("quit", Json::object(), milliseconds(2000));
  qmp.reset();
  if (vm->WaitExited(milliseconds(3000))) return Ok();
  ::pidfd_send_signal(vm->process->pidfd(), SIGKILL, nullptr, 0);
  if (vm->WaitExited(milliseconds(5000))) return Ok();
  return Err(ErrorCode::kTimeout,
             "kill " + name + ": QEMU did not exit after SIGKILL");
}

Status QemuEngine::Pause(const std::string& name) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  TRY_CTX(qmp->Execute("stop"), "pause " + name);
  return Ok();
}

Status QemuEngine::Resume(const std::string& name) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  TRY_CTX(qmp->Execute("cont"), "resume " + name);
  return Ok();
}

bool QemuEngine::WaitExit(const std::string& name, int timeout_ms) {
  auto vm = Find(name);
  return !vm || vm->WaitExited(milliseconds(timeout_ms));
}

Result<std::string> QemuEngine::QueryStatus(const std::string& name) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  auto reply = qmp->Execute("query-status");
  TRY_CTX(reply, "query-status " + name);
  auto status = reply->is_object() ? reply->find("status") : reply->end();
  if (status == reply->end() || !status->is_string()) {
    return Err(ErrorCode::kInternal,
               "query-status " + name + ": reply has no status");
  }
  return status->get<std::string>();
}

Result<Json> QemuEngine::Qmp(const std::string& name,
                             const std::string& command,
                             const Json& arguments) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  auto reply =
      qmp->Execute(command, arguments.is_null() ? Json::object() : arguments);
  TRY_CTX(reply, name);
  return reply;
}

Result<std::string> QemuEngine::Screenshot(const std::string& name) {
  ASSIGN_OR_RETURN(auto qmp, QmpFor(name));
  auto png = CaptureScreenPng(*qmp);
  TRY_CTX(png, name);
  return png;
}

Result<Json> QemuEngine::GuestAgent(const std::string& name,
                                    const std::string& command,
                                    const Json& arguments,
                                    milliseconds timeout) {
  auto vm = Find(name);
  if (!vm) return Err(ErrorCode::kNotFound, "VM " + name + " is not running");
  std::lock_guard agent_lock(vm->agent_mu);
  // A fresh connection per call: nothing to keep in sync across guest
  // reboots or agent restarts, and the sync costs one round trip.
  auto client = GuestAgentClient::Connect(
      vm->paths.guest_agent_socket,
      std::min(timeout, GuestAgentClient::kSyncTimeout));
  TRY_CTX(client, name);
  auto reply = (*client)->Execute(
      command, arguments.is_null() ? Json::object() : arguments, timeout);
  TRY_CTX(reply, name);
  return reply;
}

bool QemuEngine::IsRunning(const std::string& name) {
  auto vm = Find(name);
  if (!vm) return false;
  std::lock_guard lock(vm->mu);
  return !vm->exited;
}

void QemuEngine::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void QemuEngine::WatchLoop() {
  while (true) {
    std::vector<std::shared_ptr<Vm>> vms;
    std::vector<pollfd> fds{{wake_fd_.get(), POLLIN, 0}};
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (auto& [name, vm] : vms_) {
        vms.push_back(vm);
        fds.push_back({vm->process->pidfd(), POLLIN, 0});
      }
    }
    int r = ::poll(fds.data(), fds.size(), -1);
    if (r < 0 && errno != EINTR) {
      LOG_ERROR("qemu engine: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(milliseconds(200));
      continue;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t value;
      (void)!::read(wake_fd_.get(), &value, sizeof(value));
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents) HandleExit(vms[i - 1]);
    }
  }
}

void QemuEngine::HandleExit(const std::shared_ptr<Vm>& vm) {
  auto status = vm->process->WaitFor(milliseconds(0));
  std::shared_ptr<QmpClient> qmp;
  {
    std::lock_guard lock(vm->mu);
    qmp = std::move(vm->qmp);
  }
  // The socket closes with the process; once the reader has hit EOF every
  // event (SHUTDOWN above all) has been seen and queued before kExited.
  if (qmp) qmp->WaitClosed(milliseconds(1000));
  qmp.reset();
  RemoveRuntimeFiles(vm->paths);

  VmEvent ev;
  ev.kind = VmEvent::Kind::kExited;
  ev.instance = vm->name;
  if (vm->guest_shutdown) {
    ev.clean = true;
    ev.reason = "guest shut down";
  } else if (vm->stop_requested) {
    ev.clean = true;
    ev.reason = "stopped by vireo";
  } else if (vm->adopted || !status) {
    ev.reason = "QEMU exited unexpectedly";
  } else {
    ev.reason = "QEMU " + status->Describe();
    std::string tail = ReadTail(vm->paths.qemu_log, vm->log_offset, 500);
    if (!tail.empty()) ev.reason += ": " + tail;
  }
  {
    std::lock_guard lock(mu_);
    auto it = vms_.find(vm->name);
    if (it != vms_.end() && it->second == vm) vms_.erase(it);
  }
  {
    std::lock_guard lock(vm->mu);
    vm->exited = true;
  }
  vm->cv.notify_all();
  LOG_INFO("qemu: {} exited: {}", vm->name, ev.reason);
  events_.Push(std::move(ev));
}

}  // namespace vireo
