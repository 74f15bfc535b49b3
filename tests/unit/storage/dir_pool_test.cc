#include "storage/dir_pool.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage_test_util.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;
using testing_util::FilesUnder;
using testing_util::ReadFile;
using testing_util::TempDir;
using testing_util::WriteFile;

constexpr const char* kOwner = "0123456789abcdef";

class DirPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() + "/pool";
    auto pool = DirPool::Create("default", root_);
    ASSERT_TRUE(pool) << pool.error().ToString();
    pool_ = std::move(*pool);
    images_ = dir_.path() + "/images";
    fs::create_directories(images_);
  }

  // qemu-img check exits non-zero on any inconsistency.
  void ExpectClean(const std::string& path) {
    auto check = RunCommandOk({"qemu-img", "check", "-q", "-f", "qcow2", path});
    EXPECT_TRUE(check) << check.error().ToString();
  }

  // The guest-visible bytes of an image, via qemu-img itself.
  std::string GuestBytes(const std::string& path) {
    std::string out =
        dir_.path() + "/dump-" + std::to_string(dumps_++) + ".raw";
    auto r = RunCommandOk(
        {"qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, out});
    EXPECT_TRUE(r) << r.error().ToString();
    std::string data = ReadFile(out);
    fs::remove(out);
    return data;
  }

  TempDir dir_;
  std::string root_;
  std::string images_;
  std::unique_ptr<DirPool> pool_;
  int dumps_ = 0;
};

TEST_F(DirPoolTest, CreateVolume) {
  auto path = pool_->CreateVolume(kOwner, "root", 256ull << 20);
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(*path,
            fs::canonical(root_).string() + "/" + kOwner + "/root.qcow2");
  auto info = ProbeImage(*path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "qcow2");
  EXPECT_EQ(info->virtual_size, 256ull << 20);
  EXPECT_LT(fs::file_size(*path), 1ull << 20);  // preallocation=off
  ExpectClean(*path);
  // Only the volume: no temp files left over.
  EXPECT_EQ(FilesUnder(root_),
            std::vector<std::string>{std::string(kOwner) + "/root.qcow2"});
}

TEST_F(DirPoolTest, CreateVolumeTwiceIsAlreadyExists) {
  ASSERT_TRUE(pool_->CreateVolume(kOwner, "root", 1 << 20));
  auto again = pool_->CreateVolume(kOwner, "root", 2 << 20);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ProbeImage(root_ + "/" + kOwner + "/root.qcow2")->virtual_size,
            1u << 20);
}

TEST_F(DirPoolTest, BadNamesAreRefused) {
  for (std::string bad :
       {"", "..", ".", "../x", "a/b", ".hidden", "-rf", "a b"}) {
    auto r = pool_->CreateVolume(bad, "root", 1 << 20);
    ASSERT_FALSE(r) << "owner '" << bad << "'";
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    auto v = pool_->CreateVolume(kOwner, bad, 1 << 20);
    ASSERT_FALSE(v) << "volume '" << bad << "'";
    EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);
  }
  auto zero = pool_->CreateVolume(kOwner, "root", 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(FilesUnder(dir_.path() + "/pool").empty());
}

TEST_F(DirPoolTest, CreateFromRawKeepsContentAndGrows) {
  std::string raw = images_ + "/disk.img";
  std::string payload = "vireo was here: raw payload";
  WriteFile(raw, std::string(4 << 20, '\0'));
  WriteFile(raw, payload, 3 << 20);
  auto path = pool_->CreateVolumeFrom(kOwner, "root", raw, 16 << 20);
  ASSERT_TRUE(path) << path.error().ToString();
  auto info = ProbeImage(*path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->format, "qcow2");
  EXPECT_EQ(info->virtual_size, 16u << 20);  // grown to min_size
  ExpectClean(*path);
  std::string bytes = GuestBytes(*path);
  ASSERT_EQ(bytes.size(), 16u << 20);
  EXPECT_EQ(bytes.substr(3 << 20, payload.size()), payload);
  EXPECT_EQ(bytes.substr(0, 3 << 20), std::string(3 << 20, '\0'));
  EXPECT_EQ(bytes.substr(4 << 20), std::string(12 << 20, '\0'));
}

TEST_F(DirPoolTest, CreateFromQcow2CopiesAndDoesNotShrink) {
  // Build a qcow2 source with known content via a raw file.
  std::string raw = images_ + "/seed.img";
  std::string payload = "qcow2 payload bytes";
  WriteFile(raw, std::string(8 << 20, '\0'));
  WriteFile(raw, payload, 5 << 20);
  std::string src = images_ + "/base.qcow2";
  ASSERT_TRUE(RunCommandOk(
      {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, src}));

  auto path = pool_->CreateVolumeFrom(kOwner, "root", src,
                                      1 << 20);  // smaller than source
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(ProbeImage(*path)->virtual_size, 8u << 20);
  EXPECT_TRUE(
      ProbeImage(*path)->backing_file.empty());  // a full copy, not an overlay
  ExpectClean(*path);
  EXPECT_EQ(GuestBytes(*path).substr(5 << 20, payload.size()), payload);
  // The copy is independent of its source.
  fs::remove(src);
  EXPECT_EQ(GuestBytes(*path).substr(5 << 20, payload.size()), payload);
}

TEST_F(DirPoolTest, UnalignedMinSizeRoundsUp) {
  std::string raw = images_ + "/small.img";
  WriteFile(raw, std::string(1 << 20, 'x'));
  auto path = pool_->CreateVolumeFrom(kOwner, "root", raw, (2 << 20) + 1);
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(ProbeImage(*path)->virtual_size, (2u << 20) + 512);
}

TEST_F(DirPoolTest, TextFileIsAcceptedOnlyAsRaw) {
  std::string text = images_ + "/notes.txt";
  WriteFile(text, "just some text, not a disk image\n");
  auto info = ProbeImage(text);
  ASSERT_TRUE(info);
  ASSERT_EQ(info->format, "raw");  // qemu-img treats unknown content as raw
  auto path = pool_->CreateVolumeFrom(kOwner, "root", text, 1 << 20);
  ASSERT_TRUE(path) << path.error().ToString();
  EXPECT_EQ(GuestBytes(*path).substr(0, 10), "just some ");
}

TEST_F(DirPoolTest, IsoGivenAsADiskIsRefusedAndLeavesNothing) {
  std::string iso = images_ + "/install.iso";
  std::string data(0x10000, '\0');
  data.replace(0x8000, 6, "\x01" "CD001");
  WriteFile(iso, data);
  ASSERT_TRUE(*IsIso9660(iso));
  auto r = pool_->CreateVolumeFrom(kOwner, "root", iso, 1 << 20);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("--iso"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(FilesUnder(root_).empty());
}

TEST_F(DirPoolTest, TruncatedQcow2SourceFailsAndLeavesNothing) {
  std::string good = images_ + "/good.qcow2";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", good, "1M"}));
  std::string bad = images_ + "/bad.qcow2";
  WriteFile(bad, ReadFile(good).substr(0, 50));
  auto r = pool_->CreateVolumeFrom(kOwner, "root", bad, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find(bad), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(FilesUnder(root_).empty());
}

// Reads a big-endian u64 from a file.
uint64_t ReadBe64(const std::string& data, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(data.at(offset + i));
  return v;
}

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

TEST_F(DirPoolTest, CopyFailingMidwayLeavesNothing) {
  // A qcow2 whose header is fine (so the probe passes) but whose first data
  // cluster pointer is misaligned: qemu-img convert fails while copying,
  // after it has already created its output file.
  std::string raw = images_ + "/seed.img";
  WriteFile(raw, std::string(4 << 20, 'd'));
  std::string src = images_ + "/broken.qcow2";
  ASSERT_TRUE(RunCommandOk(
      {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, src}));
  std::string image = ReadFile(src);
  uint64_t l1_offset = ReadBe64(image, 40);
  uint64_t l2_offset = ReadBe64(image, l1_offset) & 0x00fffffffffffe00ull;
  ASSERT_NE(l2_offset, 0u);
  WriteFile(src, Be64((1ull << 63) | (l2_offset + 512)), l2_offset);
  ASSERT_EQ(ProbeImage(src)->format, "qcow2");

  auto r = pool_->CreateVolumeFrom(kOwner, "root", src, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(src), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(FilesUnder(root_).empty()) << FilesUnder(root_).at(0);
}

TEST_F(DirPoolTest, MissingSourceFailsAndLeavesNothing) {
  std::string missing = images_ + "/missing.qcow2";
  auto r = pool_->CreateVolumeFrom(kOwner, "root", missing, 1 << 20);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code() == ErrorCode::kNotFound ||
              r.error().code() == ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find(missing), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(FilesUnder(root_).empty());
}

TEST_F(DirPoolTest, UnsupportedFormatIsRefusedByName) {
  std::string vmdk = images_ + "/disk.vmdk";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "vmdk", vmdk, "1M"}));
  auto r = pool_->CreateVolumeFrom(kOwner, "root", vmdk, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("vmdk"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(FilesUnder(root_).empty());
}

TEST_F(DirPoolTest, SourceWithBackingFileIsRefused) {
  // Following a user-supplied backing file would copy arbitrary host files.
  std::string secret = images_ + "/secret.raw";
  WriteFile(secret, std::string(1 << 20, 's'));
  std::string overlay = images_ + "/overlay.qcow2";
  ASSERT_TRUE(RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                            secret, "-F", "raw", overlay}));
  auto r = pool_->CreateVolumeFrom(kOwner, "root", overlay, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(FilesUnder(root_).empty());
}

TEST_F(DirPoolTest, CreateFromOntoExistingVolumeIsAlreadyExists) {
  ASSERT_TRUE(pool_->CreateVolume(kOwner, "root", 1 << 20));
  std::string raw = images_ + "/disk.img";
  WriteFile(raw, std::string(1 << 20, 'r'));
  auto r = pool_->CreateVolumeFrom(kOwner, "root", raw, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(FilesUnder(root_),
            std::vector<std::string>{std::string(kOwner) + "/root.qcow2"});
}

TEST_F(DirPoolTest, DeleteVolume) {
  auto path = pool_->CreateVolume(kOwner, "data", 1 << 20);
  ASSERT_TRUE(path);
  ASSERT_TRUE(pool_->DeleteVolume(*path));
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_TRUE(pool_->DeleteVolume(*path));  // absent is fine
  // Paths outside the pool are refused, and the file stays.
  std::string outside = images_ + "/keep.qcow2";
  WriteFile(outside, "x");
  auto r = pool_->DeleteVolume(outside);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  auto escape = pool_->DeleteVolume(fs::canonical(root_).string() + "/" +
                                    kOwner + "/../../images/keep.qcow2");
  ASSERT_FALSE(escape);
  EXPECT_TRUE(fs::exists(outside));
}

TEST_F(DirPoolTest, DeleteOwnerRemovesOnlyThatOwner) {
  ASSERT_TRUE(pool_->CreateVolume(kOwner, "root", 1 << 20));
  ASSERT_TRUE(pool_->CreateVolume(kOwner, "data", 1 << 20));
  ASSERT_TRUE(pool_->CreateVolume("other", "root", 1 << 20));
  // A symlink planted in the owner dir must not lead the delete outside.
  std::string victim = images_ + "/victim";
  WriteFile(victim, "precious");
  fs::create_symlink(images_, root_ + "/" + kOwner + "/link");

  ASSERT_TRUE(pool_->DeleteOwner(kOwner));
  EXPECT_FALSE(fs::exists(root_ + "/" + kOwner));
  EXPECT_TRUE(fs::exists(root_ + "/other/root.qcow2"));
  EXPECT_EQ(ReadFile(victim), "precious");
  EXPECT_TRUE(pool_->DeleteOwner(kOwner));  // already gone is fine
  for (std::string bad : {"..", ".", "", "../images", "/"}) {
    auto r = pool_->DeleteOwner(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(fs::exists(root_ + "/other/root.qcow2"));
  EXPECT_TRUE(fs::exists(victim));
}

TEST_F(DirPoolTest, Usage) {
  ASSERT_TRUE(pool_->CreateVolume(kOwner, "root", 64ull << 20));
  ASSERT_TRUE(pool_->CreateVolume("other", "root", 32ull << 20));
  auto usage = pool_->Usage();
  ASSERT_TRUE(usage) << usage.error().ToString();
  EXPECT_EQ((*usage)["name"], "default");
  EXPECT_EQ((*usage)["driver"], "dir");
  EXPECT_EQ((*usage)["path"], fs::canonical(root_).string());
  EXPECT_EQ((*usage)["allocated_bytes"], 96ull << 20);
  EXPECT_EQ((*usage)["volumes"], 2);
  uint64_t capacity = (*usage)["capacity_bytes"];
  uint64_t used = (*usage)["used_bytes"];
  EXPECT_GT(capacity, 0u);
  EXPECT_GT(used, 0u);
  EXPECT_LE(used, capacity);
}

TEST(DirPoolCreateTest, RootThatIsAFileIsRefused) {
  TempDir dir;
  std::string file = dir.path() + "/file";
  WriteFile(file, "x");
  auto pool = DirPool::Create("p", file);
  ASSERT_FALSE(pool);
}

}  // namespace
}  // namespace vireo
