#include <gtest/gtest.h>

#include "storage/volume_pool.h"
#include "storage_test_util.h"

namespace vireo {
namespace {

using testing_util::TempDir;
using testing_util::WriteFile;

TEST(ProbeImageTest, Qcow2) {
  TempDir dir;
  std::string path = dir.path() + "/a.qcow2";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", path, "64M"}));
  auto info = ProbeImage(path);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->format, "qcow2");
  EXPECT_EQ(info->virtual_size, 64ull << 20);
  EXPECT_GT(info->actual_size, 0u);
  EXPECT_LT(info->actual_size, 64ull << 20);  // sparse, not preallocated
  EXPECT_TRUE(info->backing_file.empty());
}

TEST(ProbeImageTest, RawIsDetectedByContentNotName) {
  TempDir dir;
  // A qcow2 named .raw and a raw file named .qcow2: the name must not matter.
  std::string fake_raw = dir.path() + "/disk.raw";
  ASSERT_TRUE(RunCommandOk(
      {"qemu-img", "create", "-q", "-f", "qcow2", fake_raw, "1M"}));
  std::string fake_qcow2 = dir.path() + "/disk.qcow2";
  WriteFile(fake_qcow2, std::string(1 << 20, '\0'));
  auto a = ProbeImage(fake_raw);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->format, "qcow2");
  auto b = ProbeImage(fake_qcow2);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->format, "raw");
  EXPECT_EQ(b->virtual_size, 1u << 20);
}

TEST(ProbeImageTest, BackingFileIsReported) {
  TempDir dir;
  std::string base = dir.path() + "/base.qcow2";
  std::string overlay = dir.path() + "/overlay.qcow2";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", base, "1M"}));
  ASSERT_TRUE(RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                            base, "-F", "qcow2", overlay}));
  auto info = ProbeImage(overlay);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->backing_file, base);
}

TEST(ProbeImageTest, TruncatedQcow2IsInvalidArgument) {
  TempDir dir;
  std::string good = dir.path() + "/good.qcow2";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", good, "1M"}));
  std::string truncated = dir.path() + "/trunc.qcow2";
  WriteFile(truncated, testing_util::ReadFile(good).substr(0, 50));
  auto info = ProbeImage(truncated);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code(), ErrorCode::kInvalidArgument);
  // qemu-img's own explanation is passed on.
  EXPECT_NE(info.error().message().find("header"), std::string::npos)
      << info.error().message();
}

TEST(ProbeImageTest, MissingFileIsNotFoundNamingPath) {
  auto info = ProbeImage("/nonexistent/vireo/image.qcow2");
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(info.error().message().find("/nonexistent/vireo/image.qcow2"),
            std::string::npos);
}

TEST(ProbeImageTest, DirectoryAndProtocolNamesAreRefused) {
  TempDir dir;
  auto d = ProbeImage(dir.path());
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
  // "nbd:..." must be treated as a (missing) file, never as a protocol.
  auto nbd = ProbeImage("nbd:localhost:10809");
  ASSERT_FALSE(nbd);
  EXPECT_EQ(nbd.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vireo
