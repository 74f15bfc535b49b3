// These tests run the real qemu-system-x86_64 (TCG, no guest OS: SeaBIOS
// idles), because the engine's job is exactly the interplay with QEMU.
#include "engine/qemu/qemu_engine.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/process.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Pids of live processes whose arguments mention `needle`.
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline",
                     std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    if (all.find(needle) != std::string::npos) pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

class EventRecorder {
 public:
  void operator()(const VmEvent& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
    cv_.notify_all();
  }
  // The first event of `kind` (waiting up to timeout), if any.
  std::optional<VmEvent> WaitFor(VmEvent::Kind kind,
                                 std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<VmEvent> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& e : events_) {
        if (e.kind == kind) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<VmEvent> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<VmEvent> events_;
};

class QemuEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vq-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
  }
  void TearDown() override {
    engine_.reset();
    for (pid_t pid : ProcessesMentioning(dir_ + "/")) ::kill(pid, SIGKILL);
    (void)!::system(("rm -rf '" + dir_ + "'").c_str());
  }

  std::unique_ptr<QemuEngine> MakeEngine(QemuEngine::Options opts = {}) {
    if (opts.run_dir.empty()) opts.run_dir = dir_ + "/run";
    auto engine = QemuEngine::Create(opts);
    EXPECT_TRUE(engine) << engine.error().ToString();
    if (!engine) return nullptr;
    (*engine)->SetEventSink([this](const VmEvent& e) { events_(e); });
    return std::move(*engine);
  }

  static Instance MakeInstance(const std::string& name = "vm1",
                               const std::string& id = "00000000000000a1") {
    Instance inst;
    inst.id = id;
    inst.config.name = name;
    inst.config.memory_bytes = 64ull << 20;
    return inst;
  }

  std::string dir_;
  EventRecorder events_;
  std::unique_ptr<QemuEngine> engine_;
};

TEST_F(QemuEngineTest, UsesTcgOnThisHost) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  EXPECT_EQ(engine_->Accelerator(), "tcg");
  EXPECT_FALSE(engine_->AcceleratorReason().empty());
  VmPaths p = engine_->PathsFor(MakeInstance());
  EXPECT_EQ(p.dir, dir_ + "/run/00000000000000a1");
  EXPECT_EQ(p.qmp_socket, p.dir + "/qmp.sock");
  EXPECT_EQ(p.serial_socket, p.dir + "/serial.sock");
  EXPECT_EQ(p.vnc_socket, p.dir + "/vnc.sock");
  EXPECT_EQ(p.guest_agent_socket, p.dir + "/qga.sock");
  EXPECT_EQ(p.console_log, p.dir + "/console.log");
  EXPECT_EQ(p.pid_file, p.dir + "/qemu.pid");
  EXPECT_EQ(p.qemu_log, p.dir + "/qemu.log");
}

TEST_F(QemuEngineTest, CreateRejectsBadOptions) {
  QemuEngine::Options opts;
  opts.run_dir = "relative/dir";
  EXPECT_FALSE(QemuEngine::Create(opts));
  opts.run_dir = dir_ + "/run";
  opts.qemu_binary = "/nonexistent/qemu";
  EXPECT_FALSE(QemuEngine::Create(opts));
  opts.qemu_binary = "qemu-system-x86_64";
  opts.run_as_user = "no-such-user-vireo";
  EXPECT_FALSE(QemuEngine::Create(opts));
}

TEST_F(QemuEngineTest, LifecycleAndOutsideKill) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  Instance inst = MakeInstance();
  VmPaths paths = engine_->PathsFor(inst);
  auto pid = engine_->Start(inst);
  ASSERT_TRUE(pid) << pid.error().ToString();
  EXPECT_GT(*pid, 0);
  EXPECT_TRUE(engine_->IsRunning("vm1"));
  EXPECT_TRUE(Exists(paths.qmp_socket));
  EXPECT_TRUE(Exists(paths.console_log));
  auto status = engine_->QueryStatus("vm1");
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(*status, "running");

  // Accelerator really is TCG, and the name made it through.
  auto name = engine_->Qmp("vm1", "query-name", Json::object());
  ASSERT_TRUE(name);
  EXPECT_EQ((*name)["name"], "vm1");
  auto bad = engine_->Qmp("vm1", "no-such-command", Json::object());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);

  // The agent channel exists, but nothing runs in this guest: the probe
  // gives up after the sync timeout instead of hanging.
  EXPECT_TRUE(Exists(paths.guest_agent_socket));
  auto t0 = std::chrono::steady_clock::now();
  auto agent = engine_->GuestAgent("vm1", "guest-ping", Json::object(), 10s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(agent);
  EXPECT_EQ(agent.error().code(), ErrorCode::kTimeout)
      << agent.error().ToString();
  EXPECT_LT(took, 2500ms);
  EXPECT_GE(took, 1000ms);

  ASSERT_TRUE(engine_->Pause("vm1"));
  ASSERT_TRUE(events_.WaitFor(VmEvent::Kind::kPaused, 2s));
  EXPECT_EQ(engine_->QueryStatus("vm1").value_or(""), "paused");
  ASSERT_TRUE(engine_->Resume("vm1"));
  ASSERT_TRUE(events_.WaitFor(VmEvent::Kind::kResumed, 2s));
  EXPECT_EQ(engine_->QueryStatus("vm1").value_or(""), "running");

  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  auto exited = events_.WaitFor(VmEvent::Kind::kExited, 1500ms);
  ASSERT_TRUE(exited);
  EXPECT_EQ(exited->instance, "vm1");
  EXPECT_FALSE(exited->clean);
  EXPECT_THAT(exited->reason, HasSubstr("signal 9"));
  EXPECT_FALSE(engine_->IsRunning("vm1"));
  EXPECT_TRUE(engine_->WaitExit("vm1", 0));
  EXPECT_FALSE(Exists(paths.qmp_socket));
  EXPECT_FALSE(Exists(paths.serial_socket));
  EXPECT_FALSE(Exists(paths.guest_agent_socket));
  EXPECT_FALSE(Exists(paths.pid_file));
  EXPECT_TRUE(Exists(paths.console_log));
  EXPECT_TRUE(Exists(paths.qemu_log));
  auto gone = engine_->QueryStatus("vm1");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  // Events arrive in order: pause, resume, exit (a firmware reset, should
  // one happen, is not what this test is about).
  std::vector<VmEvent::Kind> kinds;
  for (const auto& e : events_.events()) {
    if (e.kind != VmEvent::Kind::kReset) kinds.push_back(e.kind);
  }
  EXPECT_EQ(kinds, (std::vector<VmEvent::Kind>{VmEvent::Kind::kPaused,
                                               VmEvent::Kind::kResumed,
                                               VmEvent::Kind::kExited}));

  // The name is free again.
  auto again = engine_->Start(inst);
  ASSERT_TRUE(again) << again.error().ToString();
  ASSERT_TRUE(engine_->Kill("vm1"));
}

TEST_F(QemuEngineTest, KillIsCleanAndWaits) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  auto pid = engine_->Start(MakeInstance());
  ASSERT_TRUE(pid) << pid.error().ToString();
  EXPECT_FALSE(engine_->WaitExit("vm1", 100));
  ASSERT_TRUE(engine_->Kill("vm1"));
  EXPECT_FALSE(engine_->IsRunning("vm1"));
  EXPECT_NE(::kill(*pid, 0), 0);  // reaped: no zombie left either
  auto exited = events_.WaitFor(VmEvent::Kind::kExited, 2s);
  ASSERT_TRUE(exited);
  EXPECT_TRUE(exited->clean);
  auto missing = engine_->Kill("vm1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(QemuEngineTest, OutsideSigtermIsNotClean) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  auto pid = engine_->Start(MakeInstance());
  ASSERT_TRUE(pid) << pid.error().ToString();
  ASSERT_EQ(::kill(*pid, SIGTERM), 0);
  auto exited = events_.WaitFor(VmEvent::Kind::kExited, 2s);
  ASSERT_TRUE(exited);
  EXPECT_FALSE(exited->clean);
  EXPECT_THAT(exited->reason, HasSubstr("terminating on signal 15"));
}

TEST_F(QemuEngineTest, DuplicateStartRejected) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  ASSERT_TRUE(engine_->Start(MakeInstance()));
  auto again = engine_->Start(MakeInstance());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(engine_->IsRunning("vm1"));
  ASSERT_TRUE(engine_->Kill("vm1"));
}

TEST_F(QemuEngineTest, StartFailureCarriesQemuStderrAndLeavesNothing) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  Instance inst = MakeInstance();
  inst.config.kernel = dir_ + "/no-such-vmlinuz";
  VmPaths paths = engine_->PathsFor(inst);
  auto start = std::chrono::steady_clock::now();
  auto pid = engine_->Start(inst);
  ASSERT_FALSE(pid);
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            5s);  // no waiting for the QMP timeout
  EXPECT_THAT(pid.error().message(), HasSubstr("start vm1"));
  EXPECT_THAT(pid.error().message(), HasSubstr(dir_ + "/no-such-vmlinuz"));
  EXPECT_TRUE(ProcessesMentioning(paths.qmp_socket).empty());
  EXPECT_FALSE(Exists(paths.qmp_socket));
  EXPECT_FALSE(Exists(paths.pid_file));
  EXPECT_FALSE(engine_->IsRunning("vm1"));
  EXPECT_TRUE(events_.events().empty());
}

TEST_F(QemuEngineTest, SocketPathTooLongRejected) {
  QemuEngine::Options opts;
  opts.run_dir = dir_ + "/" + std::string(100, 'r');
  engine_ = MakeEngine(opts);
  ASSERT_TRUE(engine_);
  auto pid = engine_->Start(MakeInstance());
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(pid.error().message(), HasSubstr("shorter run directory"));
}

TEST_F(QemuEngineTest, AdoptAfterEngineRestart) {
  Instance inst = MakeInstance();
  int pid = 0;
  {
    auto first = MakeEngine();
    ASSERT_TRUE(first);
    auto started = first->Start(inst);
    ASSERT_TRUE(started) << started.error().ToString();
    pid = *started;
  }  // "vireod restarts": the VM keeps running
  ASSERT_EQ(::kill(pid, 0), 0);

  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  // Starting over an unadopted QEMU would orphan it: refused.
  auto twice = engine_->Start(inst);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(Exists(engine_->PathsFor(inst).qmp_socket));
  auto adopted = engine_->Adopt(inst);
  ASSERT_TRUE(adopted) << adopted.error().ToString();
  EXPECT_TRUE(*adopted);
  EXPECT_TRUE(engine_->IsRunning("vm1"));
  ASSERT_TRUE(engine_->Pause("vm1"));
  EXPECT_TRUE(events_.WaitFor(VmEvent::Kind::kPaused, 2s));
  EXPECT_EQ(engine_->QueryStatus("vm1").value_or(""), "paused");
  EXPECT_TRUE(engine_->Adopt(inst).value_or(false));  // already ours

  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto exited = events_.WaitFor(VmEvent::Kind::kExited, 1500ms);
  ASSERT_TRUE(exited);
  EXPECT_FALSE(exited->clean);
  EXPECT_EQ(exited->reason, "QEMU exited unexpectedly");
  EXPECT_FALSE(Exists(engine_->PathsFor(inst).pid_file));
}

TEST_F(QemuEngineTest, AdoptOfDeadOrForeignProcessReturnsFalse) {
  engine_ = MakeEngine();
  ASSERT_TRUE(engine_);
  Instance inst = MakeInstance();
  VmPaths paths = engine_->PathsFor(inst);
  // Nothing there at all.
  auto none = engine_->Adopt(inst);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  // A stale pid file naming a live but unrelated process (pid reuse).
  ASSERT_EQ(::system(("mkdir -p " + paths.dir).c_str()), 0);
  std::ofstream(paths.pid_file) << ::getpid() << "\n";
  std::ofstream(paths.qmp_socket) << "";
  auto foreign = engine_->Adopt(inst);
  ASSERT_TRUE(foreign);
  EXPECT_FALSE(*foreign);
  EXPECT_FALSE(Exists(paths.pid_file));
  EXPECT_FALSE(Exists(paths.qmp_socket));
  EXPECT_FALSE(engine_->IsRunning("vm1"));
}

TEST_F(QemuEngineTest, CommaInPathsAndDiskWorkWithRealQemu) {
  QemuEngine::Options opts;
  opts.run_dir = dir_ + "/r,1";
  engine_ = MakeEngine(opts);
  ASSERT_TRUE(engine_);
  std::string disk = dir_ + "/d,1.qcow2";
  auto img =
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"});
  ASSERT_TRUE(img) << img.error().ToString();
  Instance inst = MakeInstance();
  inst.config.disks.push_back({"root", disk, 16 << 20, ""});
  inst.config.nics.push_back({"eth0", "user", "52:54:00:12:34:56"});
  auto pid = engine_->Start(inst);
  ASSERT_TRUE(pid) << pid.error().ToString();
  auto blocks = engine_->Qmp("vm1", "query-named-block-nodes", Json::object());
  ASSERT_TRUE(blocks);
  EXPECT_THAT(blocks->dump(), HasSubstr("d,1.qcow2"));
  ASSERT_TRUE(engine_->Kill("vm1"));
}

TEST_F(QemuEngineTest, RunAsNobodyUnderSandbox) {
  QemuEngine::Options opts;
  opts.run_as_user = "nobody";
  engine_ = MakeEngine(opts);
  ASSERT_TRUE(engine_);
  auto pid = engine_->Start(MakeInstance());
  ASSERT_TRUE(pid) << pid.error().ToString();
  std::ifstream status("/proc/" + std::to_string(*pid) + "/status");
  std::string line, uid_line;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) uid_line = line;
  }
  EXPECT_THAT(uid_line, HasSubstr("65534"));
  EXPECT_EQ(engine_->QueryStatus("vm1").value_or(""), "running");
  ASSERT_TRUE(engine_->Kill("vm1"));
  EXPECT_TRUE(events_.WaitFor(VmEvent::Kind::kExited, 2s)->clean);
}

}  // namespace
}  // namespace vireo
