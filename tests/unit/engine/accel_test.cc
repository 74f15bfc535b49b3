#include "engine/qemu/accel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace vireo {
namespace {

class AccelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-accel-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    kvm_ok_ = dir_ + "/kvm";
    std::ofstream(kvm_ok_) << "";
  }
  void TearDown() override { (void)!::system(("rm -rf " + dir_).c_str()); }

  std::string CpuInfo(const std::string& flags) {
    std::string path = dir_ + "/cpuinfo";
    std::ofstream(path) << "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: "
                        << flags << "\n\nprocessor\t: 1\nflags\t\t: " << flags
                        << "\n";
    return path;
  }

  std::string dir_;
  std::string kvm_ok_;
};

TEST_F(AccelTest, KvmWhenVmxAndDeviceUsable) {
  auto c = ChooseAccelerator("", CpuInfo("fpu vme vmx sse2"), kvm_ok_);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->accel, "kvm");
  EXPECT_NE(c->reason.find("vmx"), std::string::npos);
}

TEST_F(AccelTest, KvmWithSvm) {
  auto c = ChooseAccelerator("", CpuInfo("fpu svm sse2"), kvm_ok_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "kvm");
}

TEST_F(AccelTest, TcgWithoutVirtFlagsEvenIfDeviceExists) {
  // PVM host: /dev/kvm present, no vmx/svm.
  auto c =
      ChooseAccelerator("", CpuInfo("fpu vme sse2 vmxnet hypervisor"), kvm_ok_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "tcg");
  EXPECT_NE(c->reason.find("no vmx/svm"), std::string::npos) << c->reason;
}

TEST_F(AccelTest, TcgWhenDeviceMissing) {
  auto c = ChooseAccelerator("", CpuInfo("vmx"), dir_ + "/nokvm");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "tcg");
  EXPECT_NE(c->reason.find(dir_ + "/nokvm"), std::string::npos) << c->reason;
}

TEST_F(AccelTest, TcgWhenCpuinfoUnreadable) {
  auto c = ChooseAccelerator("", dir_ + "/missing", kvm_ok_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "tcg");
}

TEST_F(AccelTest, ForcedTcgWinsOverKvm) {
  auto c = ChooseAccelerator("tcg", CpuInfo("vmx"), kvm_ok_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "tcg");
}

TEST_F(AccelTest, ForcedKvmFailsWhenUnavailable) {
  auto c = ChooseAccelerator("kvm", CpuInfo("sse2"), kvm_ok_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  auto ok = ChooseAccelerator("kvm", CpuInfo("vmx"), kvm_ok_);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->accel, "kvm");
}

TEST_F(AccelTest, UnknownOverrideRejected) {
  auto c = ChooseAccelerator("xen", CpuInfo("vmx"), kvm_ok_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
}

TEST(AccelHostTest, ThisHostUsesTcg) {
  // The build machines are PVM hosts without vmx/svm (see shared/README.md).
  auto c = ChooseAccelerator("");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->accel, "tcg") << c->reason;
}

}  // namespace
}  // namespace vireo
