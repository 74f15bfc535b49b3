// Pool registry, usage numbers, quotas and grow-only resize.

#include <gtest/gtest.h>

#include <filesystem>

#include "core/storage_service.h"
#include "storage/dir_pool.h"
#include "storage_test_util.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

using testing_util::TempDir;

constexpr uint64_t kMiB = 1ull << 20;

class PoolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteStore::Open(dir_.path() + "/vireo.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    auto pool = DirPool::Create("default", dir_.path() + "/default");
    ASSERT_TRUE(pool) << pool.error().ToString();
    default_ = std::move(*pool);
    service_ = std::make_unique<StorageService>(store_.get(), default_.get());
  }

  PoolSpec Dir(const std::string& name, uint64_t quota = 0) {
    return PoolSpec{name, "dir", dir_.path() + "/" + name, "", "", quota};
  }

  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<DirPool> default_;
  std::unique_ptr<StorageService> service_;
};

TEST_F(PoolsTest, UsageCountsVolumesAndVirtualSizes) {
  ASSERT_TRUE(service_->Create(Dir("p2")));
  auto pool = service_->Find("p2");
  ASSERT_TRUE(pool);
  ASSERT_TRUE((*pool)->CreateVolume("volumes", "a", 64 * kMiB));
  ASSERT_TRUE((*pool)->CreateVolume("volumes", "b", 32 * kMiB));
  auto usage = service_->Show("p2");
  ASSERT_TRUE(usage) << usage.error().ToString();
  EXPECT_EQ((*usage)["volumes"], 2);
  EXPECT_EQ((*usage)["allocated_bytes"], 96 * kMiB);
  EXPECT_GT((*usage)["capacity_bytes"].get<uint64_t>(), 0u);
  EXPECT_GE((*usage)["capacity_bytes"].get<uint64_t>(),
            (*usage)["used_bytes"].get<uint64_t>());
  // The default pool is listed first and is untouched.
  auto list = service_->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0]["name"], "default");
  EXPECT_EQ((*list)[0]["volumes"], 0);
  EXPECT_EQ((*list)[1]["name"], "p2");
}

TEST_F(PoolsTest, QuotaRefusesWhatWouldPassIt) {
  ASSERT_TRUE(service_->Create(Dir("q", 100 * kMiB)));
  auto pool = service_->Find("q");
  ASSERT_TRUE(pool);
  EXPECT_TRUE(service_->CheckQuota("q", 64 * kMiB));
  ASSERT_TRUE((*pool)->CreateVolume("volumes", "a", 64 * kMiB));
  auto over = service_->CheckQuota("q", 64 * kMiB);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(service_->CheckQuota("q", 36 * kMiB));
  // The default pool has no quota.
  EXPECT_TRUE(service_->CheckQuota("default", 1ull << 40));
}

TEST_F(PoolsTest, PoolsPersistAndReopen) {
  ASSERT_TRUE(service_->Create(Dir("keep", 5 * kMiB)));
  StorageService reopened(store_.get(), default_.get());
  reopened.Load();
  auto shown = reopened.Show("keep");
  ASSERT_TRUE(shown) << shown.error().ToString();
  EXPECT_EQ((*shown)["quota_bytes"], 5 * kMiB);
  EXPECT_EQ((*shown)["type"], "dir");
}

TEST_F(PoolsTest, BadInputIsRefusedAndChangesNothing) {
  auto bad_name = service_->Create(Dir("../x"));
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().code(), ErrorCode::kInvalidArgument);
  auto relative = service_->Create(PoolSpec{"r", "dir", "rel/path", "", "", 0});
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code(), ErrorCode::kInvalidArgument);
  auto type = service_->Create(PoolSpec{"t", "zfs", "/tmp/x", "", "", 0});
  ASSERT_FALSE(type);
  EXPECT_EQ(type.error().code(), ErrorCode::kInvalidArgument);
  auto dup_default = service_->Create(Dir("default"));
  ASSERT_FALSE(dup_default);
  EXPECT_EQ(dup_default.error().code(), ErrorCode::kAlreadyExists);
  auto same_dir = service_->Create(
      PoolSpec{"again", "dir", dir_.path() + "/default", "", "", 0});
  ASSERT_FALSE(same_dir);
  EXPECT_EQ(same_dir.error().code(), ErrorCode::kAlreadyExists);
  auto list = service_->List();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
  auto records = store_->ListObjects("storage_pool");
  ASSERT_TRUE(records);
  EXPECT_TRUE(records->empty());
}

TEST_F(PoolsTest, PoolWithVolumesCannotBeDeleted) {
  ASSERT_TRUE(service_->Create(Dir("busy")));
  auto pool = service_->Find("busy");
  ASSERT_TRUE(pool);
  auto path = (*pool)->CreateVolume("volumes", "a", 8 * kMiB);
  ASSERT_TRUE(path);
  auto refused = service_->Delete("busy");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(service_->Show("busy"));
  ASSERT_TRUE((*pool)->DeleteVolume(*path));
  EXPECT_TRUE(service_->Delete("busy"));
  EXPECT_EQ(service_->Show("busy").error().code(), ErrorCode::kNotFound);
  auto def = service_->Delete("default");
  ASSERT_FALSE(def);
  EXPECT_EQ(def.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(PoolsTest, ResizeGrowsAndRefusesShrink) {
  auto path = default_->CreateVolume("volumes", "g", 16 * kMiB);
  ASSERT_TRUE(path);
  auto shrink = default_->ResizeVolume(*path, 8 * kMiB);
  ASSERT_FALSE(shrink);
  EXPECT_EQ(shrink.error().code(), ErrorCode::kInvalidArgument);
  auto info = ProbeImage(*path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->virtual_size, 16 * kMiB);
  ASSERT_TRUE(default_->ResizeVolume(*path, 48 * kMiB));
  info = ProbeImage(*path);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->virtual_size, 48 * kMiB);
  auto outside = default_->ResizeVolume(dir_.path() + "/vireo.db", 64 * kMiB);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vireo
