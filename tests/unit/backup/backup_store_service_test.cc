// BackupStoreService over a real SQLite store and real repositories.

#include "core/backup_store_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "test_util.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;
using backup::testing::RandomChunk;
using backup::testing::TempDir;
using backup::testing::WriteBackup;

class BackupStoreServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteStore::Open(tmp_.path() + "/vireo.db");
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    svc_ = std::make_unique<BackupStoreService>(store_.get(), &ops_);
  }
  std::string Dir(const std::string& name) {
    std::string d = tmp_.path() + "/" + name;
    fs::create_directories(d);
    return d;
  }
  Result<Json> Wait(const Result<Operation>& op) {
    if (!op) return tl::unexpected(op.error());
    auto done = ops_.Wait(op->id, std::chrono::seconds(60));
    if (!done) return tl::unexpected(done.error());
    if (done->status != OperationStatus::kSuccess)
      return Err(ErrorCode::kInternal, done->error);
    return done->metadata;
  }

  TempDir tmp_;
  EventBus events_;
  OperationManager ops_{&events_};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<BackupStoreService> svc_;
};

TEST_F(BackupStoreServiceTest, ResolveOpenAndCache) {
  EXPECT_EQ(svc_->Resolve("").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(svc_->Create({"zeta", Dir("a")}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(svc_->Create({"alpha", Dir("b")}));
  // The first created wins over the alphabetically first.
  EXPECT_EQ(*svc_->Resolve(""), "zeta");
  auto r1 = svc_->Open("");
  auto r2 = svc_->Open("zeta");
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(r1->get(), r2->get());
  EXPECT_EQ((*r1)->path(), tmp_.path() + "/a");
  EXPECT_EQ(svc_->Open("nope").error().code(), ErrorCode::kNotFound);
  auto list = svc_->List();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
}

TEST_F(BackupStoreServiceTest, CreateRefusesBadInputAndCreatesNothing) {
  EXPECT_EQ(svc_->Create({"s", tmp_.path() + "/missing"}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp_.path() + "/missing"));
  EXPECT_EQ(svc_->Create({"s", "relative"}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(svc_->Create({"bad/name", Dir("x")}).error().code(),
            ErrorCode::kInvalidArgument);
  std::ofstream(tmp_.path() + "/x/file") << "data";
  auto not_empty = svc_->Create({"s", tmp_.path() + "/x"});
  ASSERT_FALSE(not_empty);
  EXPECT_NE(not_empty.error().message().find("not empty"), std::string::npos);
  EXPECT_EQ(
      svc_->Create({"s", Dir("y"), tmp_.path() + "/nokey"}).error().code(),
      ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp_.path() + "/y/vireo-store.json"));
  EXPECT_TRUE(svc_->List()->empty());
}

TEST_F(BackupStoreServiceTest, EncryptedStoreWithBrokenKeyFileReportsError) {
  std::string key = tmp_.path() + "/key";
  std::ofstream(key) << std::string(64, 'f');
  auto created = svc_->Create({"enc", Dir("enc"), key});
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ((*created)["encrypted"], true);
  // A fresh service (daemon restart) with the key file now wrong.
  std::ofstream(key) << std::string(64, 'e');
  BackupStoreService fresh(store_.get(), &ops_);
  auto open = fresh.Open("enc");
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(open.error().message().find("wrong encryption key"),
            std::string::npos);
  auto info = fresh.Info("enc");
  ASSERT_TRUE(info);
  EXPECT_EQ((*info)["status"], "error");
}

TEST_F(BackupStoreServiceTest, OperationsReportResults) {
  ASSERT_TRUE(svc_->Create({"s", Dir("s")}));
  auto repo = svc_->Open("s");
  ASSERT_TRUE(repo);
  auto a = WriteBackup(**repo, "vm1", {RandomChunk(1)});
  auto b = WriteBackup(**repo, "vm1", {RandomChunk(2)});
  auto listed = svc_->ListBackups("", "vm1");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0]["id"], a.id);

  auto verify = Wait(svc_->BeginVerify("s"));
  ASSERT_TRUE(verify) << verify.error().ToString();
  EXPECT_EQ((*verify)["ok"], true);
  EXPECT_EQ((*verify)["chunks_checked"], 2);

  EXPECT_FALSE(svc_->BeginPrune("s", {}));  // no rule
  backup::PrunePolicy keep1;
  keep1.keep_last = 1;
  auto pruned = Wait(svc_->BeginPrune("s", keep1));
  ASSERT_TRUE(pruned) << pruned.error().ToString();
  EXPECT_EQ((*pruned)["removed"], Json::array({a.id}));
  auto gc = Wait(svc_->BeginGc("s"));
  ASSERT_TRUE(gc) << gc.error().ToString();
  EXPECT_EQ((*gc)["removed_chunks"], 1);

  std::string file = tmp_.path() + "/b.vbak";
  auto exported = Wait(svc_->BeginExport("s", b.id, file));
  ASSERT_TRUE(exported) << exported.error().ToString();
  EXPECT_GT((*exported)["size"].get<uint64_t>(), 0u);
  EXPECT_EQ(svc_->BeginExport("s", b.id, file).error().code(),
            ErrorCode::kAlreadyExists);
  ASSERT_TRUE(svc_->DeleteBackup("s", b.id));
  auto imported = Wait(svc_->BeginImport("s", file));
  ASSERT_TRUE(imported) << imported.error().ToString();
  EXPECT_EQ((*imported)["id"], b.id);
  EXPECT_TRUE(svc_->GetBackup("s", b.id));
}

}  // namespace
}  // namespace vireo
