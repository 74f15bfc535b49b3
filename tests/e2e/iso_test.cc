// Install from ISO: a bootable ISO built here with grub-mkrescue (BIOS and
// UEFI El Torito images) boots the guest kit from a CD-ROM; eject detaches
// it live and from the config; UEFI variables live and die with the VM.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class IsoInstall : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    iso_ = daemon_->dir() + "/kit.iso";
    std::string root = daemon_->dir() + "/iso-root";
    fs::create_directories(root + "/boot/grub");
    // grub's linux loader wants the compressed bzImage, not vmlinux.
    fs::path kit_dir = fs::path(GuestKit::Get().kernel).parent_path();
    fs::copy_file(kit_dir / "vmlinuz", root + "/boot/vmlinuz");
    fs::copy_file(GuestKit::Get().initrd, root + "/boot/initrd.img");
    std::ofstream(root + "/boot/grub/grub.cfg")
        << "serial --unit=0 --speed=115200\n"
           "terminal_input serial console\n"
           "terminal_output serial console\n"
           "set timeout=0\n"
           "menuentry guest-kit {\n"
           "  linux /boot/vmlinuz console=ttyS0 quiet\n"
           "  initrd /boot/initrd.img\n"
           "}\n";
    auto made = RunCommandOk({"grub-mkrescue", "-o", iso_, root}, 120s);
    ASSERT_TRUE(made) << made.error().ToString();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    c_ = daemon_->Client();
    ASSERT_TRUE(c_);
  }
  static std::vector<Json> Cdroms(const Json& inst) {
    std::vector<Json> out;
    for (const auto& d : inst["config"]["disks"])
      if (d.value("media", "") == "cdrom") out.push_back(d);
    return out;
  }
  // True if the process holds `path` open (its fds, not its argv).
  static bool HoldsOpen(int pid, const std::string& path) {
    std::error_code ec;
    for (auto& fd :
         fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      if (fs::read_symlink(fd.path(), ec) == path) return true;
    }
    return false;
  }
  int Pid(const std::string& name) {
    return GetInstance(*c_, name)["status"]["pid"].get<int>();
  }

  static Daemon* daemon_;
  static std::string iso_;
  std::unique_ptr<ApiClient> c_;
};
Daemon* IsoInstall::daemon_ = nullptr;
std::string IsoInstall::iso_;

TEST_F(IsoInstall, BiosBootsIsoThenEjectAndBootFromDisk) {
  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"create", "isobios", "--iso", iso_, "--disk", "1G"},
                         &out, &err),
            0)
      << err;
  Json inst = GetInstance(*c_, "isobios");
  auto cds = Cdroms(inst);
  ASSERT_EQ(cds.size(), 1u) << inst.dump();
  EXPECT_EQ(cds[0]["path"], iso_);
  EXPECT_EQ(cds[0]["readonly"], true);
  EXPECT_EQ(inst["config"]["firmware"], "bios");

  ASSERT_EQ(daemon_->Cli({"start", "isobios"}, &out, &err), 0) << err;
  ASSERT_TRUE(WaitForLog(*c_, "isobios", "VIREO-GUEST-UP", 150s))
      << ConsoleLog(*c_, "isobios");
  // It really came through the boot loader on the CD, not -kernel.
  auto cmd = GuestRun(*c_, "isobios", "cat /proc/cmdline");
  ASSERT_TRUE(cmd) << ConsoleLog(*c_, "isobios");
  EXPECT_NE(cmd->find("BOOT_IMAGE=/boot/vmlinuz"), std::string::npos) << *cmd;
  int pid = Pid("isobios");
  EXPECT_TRUE(HoldsOpen(pid, iso_));

  // Live eject: QEMU lets go of the file, the config forgets the CD-ROM.
  ASSERT_EQ(daemon_->Cli({"eject", "isobios"}, &out, &err), 0) << err;
  EXPECT_FALSE(HoldsOpen(pid, iso_));
  EXPECT_TRUE(Cdroms(GetInstance(*c_, "isobios")).empty());
  // A second eject has nothing to do.
  EXPECT_NE(daemon_->Cli({"eject", "isobios"}, &out, &err), 0);
  EXPECT_NE(err.find("no ISO attached"), std::string::npos) << err;

  // The restart boots from the (empty) disk: no CD-ROM, disk first, so the
  // guest kit does not come up a second time.
  ASSERT_EQ(daemon_->Cli({"restart", "isobios", "--force"}, &out, &err), 0)
      << err;
  ASSERT_TRUE(WaitForState(*c_, "isobios", "running", 60s));
  std::string cmdline = ProcessCmdline(Pid("isobios"));
  EXPECT_EQ(cmdline.find("ide-cd"), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find("virtio-disk0,bootindex=1"), std::string::npos)
      << cmdline;
  std::this_thread::sleep_for(10s);
  EXPECT_EQ(CountOccurrences(ConsoleLog(*c_, "isobios"), "VIREO-GUEST-UP"), 1);
  ASSERT_EQ(daemon_->Cli({"delete", "isobios", "--force"}, &out, &err), 0)
      << err;
}

TEST_F(IsoInstall, UefiBootsIsoWithPerVmVariableStore) {
  std::string out, err;
  // grub's EFI loader runs out of memory for the kernel in 256 MiB.
  ASSERT_EQ(daemon_->Cli({"create", "isouefi", "--iso", iso_, "--disk", "1G",
                          "--firmware", "uefi", "--memory", "512M"},
                         &out, &err),
            0)
      << err;
  Json inst = GetInstance(*c_, "isouefi");
  std::string vars = inst["config"]["uefi_vars"];
  EXPECT_EQ(vars, daemon_->dir() + "/instances/" +
                      inst["id"].get<std::string>() + "/OVMF_VARS.fd");
  ASSERT_TRUE(fs::exists(vars));
  ASSERT_EQ(daemon_->Cli({"start", "isouefi"}, &out, &err), 0) << err;
  // OVMF under TCG is slow to initialise.
  ASSERT_TRUE(WaitForLog(*c_, "isouefi", "VIREO-GUEST-UP", 240s))
      << ConsoleLog(*c_, "isouefi");
  std::string cmdline = ProcessCmdline(Pid("isouefi"));
  EXPECT_NE(cmdline.find("OVMF_CODE_4M.fd"), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find(vars), std::string::npos) << cmdline;
  EXPECT_NE(ConsoleLog(*c_, "isouefi").find("DVD-ROM"), std::string::npos);

  // Eject while stopped (config only); OVMF then boots the disk first.
  ASSERT_EQ(daemon_->Cli({"stop", "isouefi", "--force"}, &out, &err), 0) << err;
  ASSERT_EQ(daemon_->Cli({"eject", "isouefi"}, &out, &err), 0) << err;
  EXPECT_TRUE(Cdroms(GetInstance(*c_, "isouefi")).empty());
  size_t before = ConsoleLog(*c_, "isouefi").size();
  ASSERT_EQ(daemon_->Cli({"start", "isouefi"}, &out, &err), 0) << err;
  ASSERT_TRUE(WaitForLog(*c_, "isouefi", "BdsDxe: failed to load", 240s))
      << ConsoleLog(*c_, "isouefi");
  std::string after = ConsoleLog(*c_, "isouefi").substr(before);
  // The empty virtio disk (OVMF calls it "UEFI Misc Device"; its PCI slot
  // depends on the hot-plug root ports before it) was tried, not the CD-ROM.
  EXPECT_NE(after.find("\"UEFI Misc Device\" from PciRoot(0x0)/Pci("),
            std::string::npos)
      << after;
  EXPECT_EQ(after.find("DVD-ROM"), std::string::npos) << after;
  ASSERT_TRUE(fs::exists(vars));

  ASSERT_EQ(daemon_->Cli({"delete", "isouefi", "--force"}, &out, &err), 0)
      << err;
  EXPECT_FALSE(fs::exists(vars));
  EXPECT_FALSE(fs::exists(fs::path(vars).parent_path()));
}

TEST_F(IsoInstall, BadInputChangesNothing) {
  std::string out, err;
  auto count_files = [&] {
    std::error_code ec;
    size_t n = 0;
    for (const char* sub : {"/storage/default", "/instances"})
      for (auto& e : fs::recursive_directory_iterator(daemon_->dir() + sub, ec))
        n += e.is_regular_file();
    return n;
  };
  const size_t files_before = count_files();
  std::string qcow = daemon_->dir() + "/not-an-iso.qcow2";
  ASSERT_TRUE(RunCommandOk({"qemu-img", "create", "-f", "qcow2", qcow, "16M"}));
  EXPECT_NE(daemon_->Cli({"create", "badiso", "--iso", qcow, "--disk", "1G"},
                         &out, &err),
            0);
  EXPECT_NE(err.find("not an ISO 9660 image"), std::string::npos) << err;
  EXPECT_NE(daemon_->Cli(
                {"create", "badiso", "--iso", "no-such-image", "--disk", "1G"},
                &out, &err),
            0);
  EXPECT_NE(err.find("no image named 'no-such-image'"), std::string::npos)
      << err;

  auto post = [&](const Json& body) {
    auto r = c_->RawRequest("POST", "/1.0/instances", body.dump());
    return r ? r->status : -1;
  };
  Json base = {{"name", "badiso"}, {"disks", {{{"size", "1G"}}}}};
  Json bad_fw = base;
  bad_fw["firmware"] = "coreboot";
  EXPECT_EQ(post(bad_fw), 400);
  Json bad_os = base;
  bad_os["os_type"] = "beos";
  EXPECT_EQ(post(bad_os), 400);
  Json bad_iso = base;
  bad_iso["iso"] = qcow;
  EXPECT_EQ(post(bad_iso), 400);

  // Nothing was created: no instance, no volume, no state dir.
  auto r = c_->RawRequest("GET", "/1.0/instances/badiso", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(count_files(), files_before);
  // Eject on an instance that does not exist.
  EXPECT_NE(daemon_->Cli({"eject", "badiso"}, &out, &err), 0);
}

}  // namespace
}  // namespace vireo::e2e
