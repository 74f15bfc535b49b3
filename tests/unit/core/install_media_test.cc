#include "core/install_media.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vireo {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class InstallMediaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-media-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A file of 64 KiB with `magic` at byte 0x8001.
  std::string MakeFile(const std::string& name, const std::string& magic) {
    std::string path = dir_ + "/" + name;
    std::string bytes(64 << 10, '\0');
    bytes.replace(0x8001, magic.size(), magic);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string dir_;
};

TEST_F(InstallMediaTest, DetectsIso9660) {
  EXPECT_TRUE(*IsIso9660(MakeFile("a.iso", "CD001")));
  EXPECT_FALSE(*IsIso9660(MakeFile("b.iso", "QFI\xfb")));
  std::ofstream(dir_ + "/short") << "CD001";
  EXPECT_FALSE(*IsIso9660(dir_ + "/short"));
}

TEST_F(InstallMediaTest, IsoPathBecomesReadOnlyCdrom) {
  CreateRequest r;
  r.iso = MakeFile("a.iso", "CD001");
  auto cd = ResolveInstallMedia(nullptr, r);
  ASSERT_TRUE(cd) << cd.error().ToString();
  EXPECT_EQ(cd->path, r.iso);
  EXPECT_EQ(cd->media, "cdrom");
  EXPECT_EQ(cd->format, "raw");
  EXPECT_TRUE(cd->readonly);
}

TEST_F(InstallMediaTest, NonIsoAndBadOptionsRefused) {
  CreateRequest r;
  r.iso = MakeFile("disk.qcow2", "nope");
  auto cd = ResolveInstallMedia(nullptr, r);
  ASSERT_FALSE(cd);
  EXPECT_EQ(cd.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(cd.error().message(), HasSubstr("not an ISO 9660 image"));
  r.iso = dir_;  // a directory
  EXPECT_FALSE(ResolveInstallMedia(nullptr, r));
  r.iso.clear();
  r.firmware = "coreboot";
  cd = ResolveInstallMedia(nullptr, r);
  ASSERT_FALSE(cd);
  EXPECT_THAT(cd.error().message(), HasSubstr("unknown firmware"));
  r.firmware = "bios";
  r.os_type = "plan9";
  cd = ResolveInstallMedia(nullptr, r);
  ASSERT_FALSE(cd);
  EXPECT_THAT(cd.error().message(), HasSubstr("unknown os_type"));
}

TEST_F(InstallMediaTest, UefiVarsAreAPrivateCopyOfTheTemplate) {
  ASSERT_TRUE(fs::exists(kOvmfVarsTemplate)) << "scripts/setup installs ovmf";
  auto vars = CreateUefiVars(dir_ + "/inst");
  ASSERT_TRUE(vars) << vars.error().ToString();
  EXPECT_EQ(*vars, dir_ + "/inst/OVMF_VARS.fd");
  EXPECT_EQ(fs::file_size(*vars), fs::file_size(kOvmfVarsTemplate));
}

}  // namespace
}  // namespace vireo
