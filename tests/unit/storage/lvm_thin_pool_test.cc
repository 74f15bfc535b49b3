// LVM-thin pool on a loop device. Needs root, lvm2 and a kernel with
// device-mapper; skipped (with the reason) where those are missing.

#include "storage/lvm_thin_pool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/process.h"
#include "common/random.h"
#include "storage_test_util.h"

namespace vireo {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

bool HaveDeviceMapper() {
  std::ifstream misc("/proc/misc");
  std::string line;
  while (std::getline(misc, line))
    if (line.find("device-mapper") != std::string::npos) return true;
  return false;
}

class LvmThinPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lvm = RunCommand({"lvm", "version"});
    if (!lvm || !lvm->status.success())
      GTEST_SKIP() << "lvm2 tools are not installed";
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (loop devices, LVM)";
    if (!HaveDeviceMapper())
      GTEST_SKIP() << "this kernel has no device-mapper (/proc/misc); "
                      "LVM volumes cannot be activated here";
    backing_ = dir_.path() + "/pv.img";
    ASSERT_TRUE(RunCommandOk({"truncate", "-s", "512M", backing_}));
    auto loop = RunCommandOk({"losetup", "-f", "--show", backing_});
    ASSERT_TRUE(loop) << loop.error().ToString();
    loop_ = *loop;
    while (!loop_.empty() && loop_.back() == '\n') loop_.pop_back();
    vg_ = "vireout" + RandomHex(3);
    auto pv = RunLvm({"pvcreate", "-q", loop_});
    ASSERT_TRUE(pv) << pv.error().ToString();
    auto vg = RunLvm({"vgcreate", "-q", vg_, loop_});
    ASSERT_TRUE(vg) << vg.error().ToString();
    vg_made_ = true;
    auto tp = RunLvm({"lvcreate", "-q", "--type", "thin-pool", "-L", "256M",
                      "-n", "tp", vg_});
    ASSERT_TRUE(tp) << tp.error().ToString();
  }

  // Runs even when SetUp or the test failed half-way.
  void TearDown() override {
    if (vg_made_) (void)RunLvm({"vgremove", "-q", "-f", vg_});
    if (!loop_.empty()) {
      (void)RunLvm({"pvremove", "-q", "-f", loop_});
      (void)RunCommand({"losetup", "-d", loop_});
    }
  }

  testing_util::TempDir dir_;
  std::string backing_;
  std::string loop_;
  std::string vg_;
  bool vg_made_ = false;
};

TEST_F(LvmThinPoolTest, VolumesUsageResizeAndRefusals) {
  auto not_thin = LvmThinPool::Create("bad", vg_, "nosuchpool");
  ASSERT_FALSE(not_thin);
  EXPECT_EQ(not_thin.error().code(), ErrorCode::kInvalidArgument);

  auto pool = LvmThinPool::Create("lvm", vg_, "tp");
  ASSERT_TRUE(pool) << pool.error().ToString();
  auto path = (*pool)->CreateVolume("volumes", "data", 64 * kMiB);
  ASSERT_TRUE(path) << path.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path->c_str(), &st), 0) << *path;
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ((*pool)->volume_format(), "raw");

  auto dup = (*pool)->CreateVolume("volumes", "data", 64 * kMiB);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);

  auto usage = (*pool)->Usage();
  ASSERT_TRUE(usage) << usage.error().ToString();
  EXPECT_EQ((*usage)["volumes"], 1);
  EXPECT_EQ((*usage)["allocated_bytes"], 64 * kMiB);
  EXPECT_EQ((*usage)["capacity_bytes"], 256 * kMiB);

  // Bytes written to the device read back.
  ASSERT_TRUE(RunCommandOk(
      {"sh", "-c",
       "printf vireo-lvm-bytes | dd of=" + *path + " conv=fsync status=none"}));
  auto back =
      RunCommandOk({"dd", "if=" + *path, "bs=15", "count=1", "status=none"});
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, "vireo-lvm-bytes");

  auto shrink = (*pool)->ResizeVolume(*path, 32 * kMiB);
  ASSERT_FALSE(shrink);
  EXPECT_EQ(shrink.error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE((*pool)->ResizeVolume(*path, 128 * kMiB));
  auto info = ProbeImage(*path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->virtual_size, 128 * kMiB);

  auto clone =
      (*pool)->CreateLinkedClone("owner", "c", "/tmp/x.qcow2", "qcow2", 0);
  ASSERT_FALSE(clone);
  EXPECT_EQ(clone.error().code(), ErrorCode::kFailedPrecondition);

  auto outside = (*pool)->DeleteVolume("/dev/" + vg_ + "/tp");
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE((*pool)->DeleteOwner("volumes"));
  usage = (*pool)->Usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ((*usage)["volumes"], 0);
  EXPECT_NE(::access(path->c_str(), F_OK), 0);
}

}  // namespace
}  // namespace vireo
