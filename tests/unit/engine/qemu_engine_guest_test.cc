// Boots the real test guest (scripts/guest-kit) to cover what SeaBIOS alone
// cannot: the serial console log and a guest-initiated power-off.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "engine/qemu/qemu_engine.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string GuestKitDir() {
  if (const char* dir = std::getenv("VIREO_GUEST_KIT")) return dir;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/vireo/guest-kit";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

TEST(QemuEngineGuestTest, ConsoleLogAndGuestPoweroffIsClean) {
  std::string kit = GuestKitDir();
  if (::access((kit + "/vmlinux").c_str(), R_OK) != 0 ||
      ::access((kit + "/initrd.img").c_str(), R_OK) != 0) {
    GTEST_SKIP() << "no guest kit in " << kit << " (run scripts/guest-kit)";
  }
  char tmpl[] = "/tmp/vg-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;

  QemuEngine::Options opts;
  opts.run_dir = dir;
  auto engine = QemuEngine::Create(opts);
  ASSERT_TRUE(engine) << engine.error().ToString();
  std::mutex mu;
  std::condition_variable cv;
  std::optional<VmEvent> exited;
  (*engine)->SetEventSink([&](const VmEvent& e) {
    if (e.kind != VmEvent::Kind::kExited) return;
    std::lock_guard lock(mu);
    exited = e;
    cv.notify_all();
  });

  Instance inst;
  inst.id = "00000000000000b1";
  inst.config.name = "guest";
  inst.config.memory_bytes = 256ull << 20;
  inst.config.kernel = kit + "/vmlinux";
  inst.config.initrd = kit + "/initrd.img";
  inst.config.cmdline = "console=ttyS0 quiet vireo.poweroff=1";
  auto pid = (*engine)->Start(inst);
  ASSERT_TRUE(pid) << pid.error().ToString();

  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return exited.has_value(); }))
        << "guest did not power off; console:\n"
        << ReadFile((*engine)->PathsFor(inst).console_log);
    EXPECT_TRUE(exited->clean);
    EXPECT_EQ(exited->reason, "guest shut down");
  }
  // Serial output reaches console.log with no client on serial.sock.
  std::string console = ReadFile((*engine)->PathsFor(inst).console_log);
  EXPECT_THAT(console, HasSubstr("VIREO-GUEST-UP"));
  EXPECT_THAT(console, HasSubstr("VIREO-GUEST-POWEROFF"));
  engine->reset();
  (void)!::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace vireo
