#include "storage/image_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/image_service.h"
#include "storage_test_util.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;
using testing_util::FilesUnder;
using testing_util::ReadFile;
using testing_util::TempDir;
using testing_util::WriteFile;

void Exec(const std::vector<std::string>& argv) {
  auto r = RunCommandOk(argv);
  ASSERT_TRUE(r) << r.error().ToString();
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.path() + "/src";
    fs::create_directories(src_);
    auto store = ImageStore::Create(dir_.path() + "/images");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  // A qcow2 with a recognizable pattern at 1 MiB.
  std::string MakeQcow2(const std::string& name) {
    std::string path = src_ + "/" + name;
    Exec({"qemu-img", "create", "-q", "-f", "qcow2", path, "16M"});
    Exec({"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 64k", path});
    return path;
  }

  std::string GuestBytes(const std::string& path, const std::string& fmt) {
    std::string out = dir_.path() + "/dump.raw";
    fs::remove(out);
    Exec({"qemu-img", "convert", "-f", fmt, "-O", "raw", path, out});
    return ReadFile(out);
  }

  std::vector<std::string> StoreFiles() {
    return FilesUnder(dir_.path() + "/images");
  }

  TempDir dir_;
  std::string src_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, ImportsQcow2RawVmdkVdiAsQcow2) {
  std::string qcow2 = MakeQcow2("a.qcow2");
  std::string expected = GuestBytes(qcow2, "qcow2");
  ASSERT_EQ(expected.substr(1 << 20, 4), "ZZZZ");
  int n = 0;
  for (std::string fmt : {"qcow2", "raw", "vmdk", "vdi"}) {
    std::string src = qcow2;
    if (fmt != "qcow2") {
      // Named .img on purpose: the format comes from the content.
      src = src_ + "/disk-" + fmt + ".img";
      Exec({"qemu-img", "convert", "-f", "qcow2", "-O", fmt, qcow2, src});
    }
    auto image = store_->Import(src, "id" + std::to_string(n++));
    ASSERT_TRUE(image) << fmt << ": " << image.error().ToString();
    EXPECT_EQ(image->format, "qcow2");
    EXPECT_EQ(image->virtual_size, 16u << 20);
    EXPECT_EQ(image->size, fs::file_size(image->path));
    EXPECT_EQ(ImageStore::DetectFormat(image->path).value(), "qcow2");
    EXPECT_EQ(GuestBytes(image->path, "qcow2"), expected) << fmt;
    // The recorded checksum is that of the stored file.
    auto sum = RunCommandOk({"sha256sum", image->path});
    ASSERT_TRUE(sum);
    EXPECT_EQ(image->sha256, sum->substr(0, 64));
  }
  EXPECT_EQ(StoreFiles().size(), 4u);
}

TEST_F(ImageStoreTest, IsoDetectedBySignatureAndStoredAsIs) {
  fs::create_directories(src_ + "/iso");
  WriteFile(src_ + "/iso/hello.txt", "hello\n");
  // No .iso extension: detection must not depend on the name.
  std::string iso = src_ + "/installer.bin";
  Exec({"xorriso", "-as", "mkisofs", "-quiet", "-V", "TEST", "-J", "-r", "-o",
       iso, src_ + "/iso"});
  EXPECT_EQ(ImageStore::DetectFormat(iso).value(), "iso");
  auto image = store_->Import(iso, "iso1");
  ASSERT_TRUE(image) << image.error().ToString();
  EXPECT_EQ(image->format, "iso");
  EXPECT_TRUE(image->path.ends_with(".iso"));
  EXPECT_EQ(ReadFile(image->path), ReadFile(iso));
  // A plain raw disk is not an ISO.
  std::string raw = src_ + "/disk.iso";
  Exec({"qemu-img", "create", "-q", "-f", "raw", raw, "1M"});
  EXPECT_EQ(ImageStore::DetectFormat(raw).value(), "raw");
}

TEST_F(ImageStoreTest, RefusesDamagedAndForeignImagesLeavingNothing) {
  std::string good = MakeQcow2("good.qcow2");
  // Truncated: the header is fine, the clusters it points to are gone.
  std::string truncated = src_ + "/truncated.qcow2";
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, 200000);
  // Corrupt header: an impossible version number.
  std::string corrupt = src_ + "/corrupt.qcow2";
  fs::copy_file(good, corrupt);
  WriteFile(corrupt, std::string("\xff\xff\xff\xff", 4), 4);
  // Backing file pointing outside the store.
  std::string overlay = src_ + "/overlay.qcow2";
  Exec({"qemu-img", "create", "-q", "-f", "qcow2", "-b", good, "-F", "qcow2",
       overlay});
  // A format we do not take.
  std::string vpc = src_ + "/disk.vhd";
  Exec({"qemu-img", "create", "-q", "-f", "vpc", vpc, "16M"});

  struct Case {
    std::string path, expect;
  };
  for (const Case& c : {Case{truncated, "damaged"}, Case{corrupt, "qcow2"},
                        Case{overlay, "backing file"}, Case{vpc, "vpc"},
                        Case{src_ + "/missing.qcow2", "does not exist"}}) {
    auto image = store_->Import(c.path, "bad");
    ASSERT_FALSE(image) << c.path;
    EXPECT_NE(image.error().message().find(c.expect), std::string::npos)
        << image.error().ToString();
    EXPECT_NE(image.error().code(), ErrorCode::kInternal);
    EXPECT_TRUE(StoreFiles().empty()) << c.path;
  }
}

TEST_F(ImageStoreTest, StartupRemovesInterruptedImports) {
  WriteFile(dir_.path() + "/images/.tmp-abc-1-0", "partial");
  auto store = ImageStore::Create(dir_.path() + "/images");
  ASSERT_TRUE(store);
  EXPECT_TRUE(StoreFiles().empty());
}

TEST_F(ImageStoreTest, ExportsInAskedFormat) {
  std::string qcow2 = MakeQcow2("a.qcow2");
  auto image = store_->Import(qcow2, "x");
  ASSERT_TRUE(image);
  std::string out = dir_.path() + "/out.vmdk";
  ASSERT_TRUE(store_->Export(*image, out, "vmdk"));
  EXPECT_EQ(ImageStore::DetectFormat(out).value(), "vmdk");
  EXPECT_EQ(GuestBytes(out, "vmdk"), GuestBytes(qcow2, "qcow2"));
  // Never overwrites.
  auto again = store_->Export(*image, out, "raw");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

// The service: records, names and the atomicity of whole imports.
class ImageServiceTest : public ImageStoreTest {
 protected:
  void SetUp() override {
    ImageStoreTest::SetUp();
    auto db = SqliteStore::Open(dir_.path() + "/vireo.db");
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    ops_ = std::make_unique<OperationManager>(&events_);
    auto svc = ImageService::Create(db_.get(), ops_.get(), &events_,
                                    dir_.path() + "/images");
    ASSERT_TRUE(svc) << svc.error().ToString();
    images_ = std::move(*svc);
  }

  Result<Json> Import(const std::string& source,
                      std::vector<std::string> aliases) {
    ImageImportRequest r;
    r.source = source;
    r.aliases = std::move(aliases);
    ASSIGN_OR_RETURN(Operation op, images_->BeginImport(r));
    ASSIGN_OR_RETURN(op, ops_->Wait(op.id, std::chrono::seconds(60)));
    if (op.status != OperationStatus::kSuccess)
      return Err(ErrorCode::kInvalidArgument, op.error);
    return op.metadata;
  }

  EventBus events_;
  std::unique_ptr<SqliteStore> db_;
  std::unique_ptr<OperationManager> ops_;
  std::unique_ptr<ImageService> images_;
};

TEST_F(ImageServiceTest, RecordsImageFoundByNameOrAlias) {
  auto rec = Import(MakeQcow2("a.qcow2"), {"base", "base-latest"});
  ASSERT_TRUE(rec) << rec.error().ToString();
  auto by_alias = images_->Get("base-latest");
  ASSERT_TRUE(by_alias);
  EXPECT_EQ((*by_alias)["name"], "base");
  EXPECT_EQ((*by_alias)["format"], "qcow2");
  EXPECT_EQ((*by_alias)["virtual_size"], 16u << 20);
  std::string path = (*by_alias)["path"];
  auto sum = RunCommandOk({"sha256sum", path});
  ASSERT_TRUE(sum);
  EXPECT_EQ((*by_alias)["fingerprint"], sum->substr(0, 64));
  // The schema other services read.
  auto raw = db_->GetObject("image", "base");
  ASSERT_TRUE(raw);
  EXPECT_EQ((*raw)["path"], path);
  ASSERT_TRUE(images_->AddAlias("base", "gold"));
  EXPECT_TRUE(images_->Get("gold"));
  ASSERT_TRUE(images_->RemoveAlias("gold", "gold"));
  EXPECT_FALSE(images_->Get("gold"));
}

TEST_F(ImageServiceTest, NameCollisionRefusedAndNothingChanges) {
  ASSERT_TRUE(Import(MakeQcow2("a.qcow2"), {"base", "b2"}));
  auto files = StoreFiles();
  for (auto names : {std::vector<std::string>{"base"},
                     std::vector<std::string>{"other", "b2"}}) {
    ImageImportRequest r;
    r.source = MakeQcow2("c.qcow2");
    r.aliases = names;
    auto op = images_->BeginImport(r);
    ASSERT_FALSE(op);
    EXPECT_EQ(op.error().code(), ErrorCode::kAlreadyExists);
  }
  EXPECT_FALSE(images_->AddAlias("base", "b2"));
  EXPECT_EQ(StoreFiles(), files);
  EXPECT_EQ(images_->List()->size(), 1u);
}

TEST_F(ImageServiceTest, FailedImportLeavesNoFileAndNoRecord) {
  std::string truncated = src_ + "/t.qcow2";
  fs::copy_file(MakeQcow2("a.qcow2"), truncated);
  fs::resize_file(truncated, 200000);
  auto rec = Import(truncated, {"broken"});
  ASSERT_FALSE(rec);
  EXPECT_NE(rec.error().message().find("damaged"), std::string::npos);
  EXPECT_TRUE(StoreFiles().empty());
  EXPECT_TRUE(images_->List()->empty());
  EXPECT_FALSE(images_->Get("broken"));
}

TEST_F(ImageServiceTest, DeleteRefusedWhileClonesDependAndOrphansRemoved) {
  ASSERT_TRUE(Import(MakeQcow2("a.qcow2"), {"base"}));
  Instance inst;
  inst.id = "0123456789abcdef";
  inst.config.name = "clone1";
  DiskConfig disk;
  disk.name = "root";
  disk.path = "/nonexistent";
  disk.image = "base";
  inst.config.disks.push_back(disk);
  ASSERT_TRUE(db_->CreateInstance(inst));
  auto st = images_->Delete("base");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message().find("clone1"), std::string::npos);
  EXPECT_EQ(StoreFiles().size(), 1u);
  ASSERT_TRUE(db_->DeleteInstance("clone1"));
  ASSERT_TRUE(images_->Delete("base"));
  EXPECT_TRUE(StoreFiles().empty());
  EXPECT_FALSE(images_->Get("base"));

  // A file renamed into place just before a crash, without its record.
  WriteFile(dir_.path() + "/images/deadbeef.qcow2", "x");
  images_.reset();
  auto svc = ImageService::Create(db_.get(), ops_.get(), &events_,
                                  dir_.path() + "/images");
  ASSERT_TRUE(svc);
  EXPECT_TRUE(StoreFiles().empty());
}

}  // namespace
}  // namespace vireo
