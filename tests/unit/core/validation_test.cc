#include "core/validation.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace vireo {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = ::testing::TempDir() + "/vireo-validation-kernel";
    std::ofstream(kernel_) << "not really a kernel";
  }
  void TearDown() override { std::remove(kernel_.c_str()); }
  CreateRequest Valid() {
    CreateRequest r;
    r.name = "vm1";
    r.kernel = kernel_;
    return r;
  }
  std::string kernel_;
};

TEST_F(ValidationTest, GoodNames) {
  for (const char* n : {"a", "vm1", "web-01", "A-b-C", "x123456789"})
    EXPECT_TRUE(ValidateInstanceName(n)) << n;
  EXPECT_TRUE(ValidateInstanceName(std::string(63, 'a')));
}

TEST_F(ValidationTest, BadNamesAreRefusedWithTheReason) {
  struct {
    std::string name;
    const char* why;
  } cases[] = {{"", "empty"},
               {std::string(64, 'a'), "63"},
               {"a/b", "only letters"},
               {"..", "start with a letter"},
               {"has space", "only letters"},
               {"1vm", "start with a letter"},
               {"vm-", "end with"},
               {"vm_1", "only letters"},
               {"vm\n", "only letters"}};
  for (const auto& c : cases) {
    auto st = ValidateInstanceName(c.name);
    ASSERT_FALSE(st) << c.name;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message().find(c.why), std::string::npos)
        << st.error().message();
  }
}

TEST_F(ValidationTest, ValidRequestPasses) {
  EXPECT_TRUE(ValidateCreateRequest(Valid()));
}

TEST_F(ValidationTest, CpuAndMemoryBounds) {
  auto r = Valid();
  r.cpus = 0;
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.cpus = kMaxCpus + 1;
  EXPECT_FALSE(ValidateCreateRequest(r));
  r = Valid();
  r.memory_bytes = 1 << 20;
  auto st = ValidateCreateRequest(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("memory"), std::string::npos);
  r.memory_bytes = (256ull << 20) + 1;
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.memory_bytes = kMaxMemory + (1 << 20);
  EXPECT_FALSE(ValidateCreateRequest(r));
}

TEST_F(ValidationTest, FilesMustExistAndBeAbsolute) {
  auto r = Valid();
  r.kernel = "/does/not/exist";
  auto st = ValidateCreateRequest(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("/does/not/exist"), std::string::npos);
  r.kernel = "relative/kernel";
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.kernel = "/tmp";  // a directory
  EXPECT_FALSE(ValidateCreateRequest(r));
  r = Valid();
  r.initrd = "/nope";
  EXPECT_FALSE(ValidateCreateRequest(r));
}

TEST_F(ValidationTest, BootSourceAndDisks) {
  CreateRequest r;
  r.name = "x";
  auto st = ValidateCreateRequest(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("nothing to boot"), std::string::npos);
  r.disks.push_back({1ull << 30, ""});
  EXPECT_TRUE(ValidateCreateRequest(r));
  r.disks.push_back({0, ""});
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.disks.back() = {100, ""};  // under 1 MiB
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.disks.back() = {0, "/missing.qcow2"};
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.disks.pop_back();
  r.cmdline = "console=ttyS0";  // a cmdline without a kernel means nothing
  EXPECT_FALSE(ValidateCreateRequest(r));
}

TEST_F(ValidationTest, NicsAndCmdlineLimits) {
  auto r = Valid();
  r.nics = -1;
  EXPECT_FALSE(ValidateCreateRequest(r));
  r.nics = kMaxNics + 1;
  EXPECT_FALSE(ValidateCreateRequest(r));
  r = Valid();
  r.cmdline = std::string(kMaxCmdline + 1, 'a');
  EXPECT_FALSE(ValidateCreateRequest(r));
}

TEST(StateActionTest, Parse) {
  EXPECT_EQ(*ParseStateAction("start"), StateAction::kStart);
  EXPECT_EQ(*ParseStateAction("freeze"), StateAction::kPause);
  EXPECT_EQ(*ParseStateAction("unfreeze"), StateAction::kResume);
  auto bad = ParseStateAction("explode");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("explode"), std::string::npos);
}

}  // namespace
}  // namespace vireo
