#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "../temp_dir.h"
#include "store/sqlite/migrations.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

using ::vireo::test::TempDir;

Instance MakeInstance(const std::string& name, const std::string& id) {
  Instance inst;
  inst.id = id;
  inst.created_at = 1700000000;
  inst.config.name = name;
  inst.config.cpus = 2;
  inst.config.memory_bytes = 512ull << 20;
  inst.config.disks = {{"root", "/pool/" + id + "/root.qcow2", 1ull << 30, ""}};
  inst.config.nics = {{"eth0", "user", "52:54:00:00:00:01"}};
  return inst;
}

ApiToken MakeToken(const std::string& id, const std::string& name,
                   const std::string& hash, int64_t created_at) {
  return ApiToken{id, name, hash, created_at};
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = dir_.path() + "/vireo.db";
    auto store = SqliteStore::Open(db_path_);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }

  TempDir dir_;
  std::string db_path_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, CreateGetListUpdateDelete) {
  ASSERT_TRUE(store_->CreateInstance(MakeInstance("b", "00000000000000bb")));
  ASSERT_TRUE(store_->CreateInstance(MakeInstance("a", "00000000000000aa")));

  auto got = store_->GetInstance("a");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->id, "00000000000000aa");
  EXPECT_EQ(got->created_at, 1700000000);
  EXPECT_EQ(got->config.cpus, 2);
  EXPECT_EQ(got->config.disks.at(0).path, "/pool/00000000000000aa/root.qcow2");

  auto list = store_->ListInstances();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name(), "a");  // sorted by name
  EXPECT_EQ((*list)[1].name(), "b");

  Instance changed = *got;
  changed.status.state = InstanceState::kRunning;
  changed.status.pid = 999;
  changed.config.cpus = 4;
  ASSERT_TRUE(store_->UpdateInstance(changed));
  auto after = store_->GetInstance("a");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status.state, InstanceState::kRunning);
  EXPECT_EQ(after->status.pid, 999);
  EXPECT_EQ(after->config.cpus, 4);

  ASSERT_TRUE(store_->DeleteInstance("a"));
  auto gone = store_->GetInstance("a");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListInstances()->size(), 1u);
}

TEST_F(SqliteStoreTest, DuplicateNameOrIdIsAlreadyExists) {
  ASSERT_TRUE(store_->CreateInstance(MakeInstance("web", "0000000000000001")));
  auto dup = store_->CreateInstance(MakeInstance("web", "0000000000000002"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup.error().message().find("'web'"), std::string::npos)
      << dup.error().message();
  auto dup_id =
      store_->CreateInstance(MakeInstance("other", "0000000000000001"));
  ASSERT_FALSE(dup_id);
  EXPECT_EQ(dup_id.error().code(), ErrorCode::kAlreadyExists);
  // The failed inserts rolled back: still exactly one instance.
  EXPECT_EQ(store_->ListInstances()->size(), 1u);
  EXPECT_EQ(store_->GetInstance("web")->id, "0000000000000001");
}

TEST_F(SqliteStoreTest, MissingInstanceIsNotFound) {
  auto get = store_->GetInstance("ghost");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(get.error().message(), "instance 'ghost' not found");
  auto upd = store_->UpdateInstance(MakeInstance("ghost", "00000000000000ff"));
  ASSERT_FALSE(upd);
  EXPECT_EQ(upd.error().code(), ErrorCode::kNotFound);
  auto del = store_->DeleteInstance("ghost");
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), ErrorCode::kNotFound);
  // Update must not have inserted it.
  EXPECT_TRUE(store_->ListInstances()->empty());
}

TEST_F(SqliteStoreTest, NamesAreNotSqlInjected) {
  std::string evil = "x'); DROP TABLE instances; --";
  ASSERT_TRUE(store_->CreateInstance(MakeInstance(evil, "0000000000000abc")));
  auto got = store_->GetInstance(evil);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name(), evil);
  EXPECT_EQ(store_->ListInstances()->size(), 1u);
}

TEST_F(SqliteStoreTest, ReopenPersistsAndMigrationIsIdempotent) {
  ASSERT_TRUE(store_->CreateInstance(MakeInstance("keep", "000000000000abcd")));
  ASSERT_TRUE(store_->CreateToken(MakeToken("t1", "admin", "hash1", 5)));
  EXPECT_EQ(*store_->SchemaVersion(), sqlite::LatestSchemaVersion());
  store_.reset();
  for (int i = 0; i < 3; ++i) {
    auto reopened = SqliteStore::Open(db_path_);
    ASSERT_TRUE(reopened) << reopened.error().ToString();
    EXPECT_EQ(*(*reopened)->SchemaVersion(), sqlite::LatestSchemaVersion());
    auto got = (*reopened)->GetInstance("keep");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->id, "000000000000abcd");
    EXPECT_EQ((*reopened)->ListTokens()->size(), 1u);
    EXPECT_TRUE((*reopened)->CheckIntegrity());
  }
}

TEST_F(SqliteStoreTest, OpensInWalModeWithFullSync) {
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  // WAL is persistent in the file, so a fresh connection sees it.
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
               "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &raw), SQLITE_OK);
  std::string sql = "PRAGMA user_version = " +
                    std::to_string(sqlite::LatestSchemaVersion() + 1);
  ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto reopened = SqliteStore::Open(db_path_);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(reopened.error().message().find("newer"), std::string::npos)
      << reopened.error().message();
}

TEST_F(SqliteStoreTest, GarbageFileIsAnError) {
  store_.reset();
  std::string path = dir_.path() + "/garbage.db";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string junk(8192, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto opened = SqliteStore::Open(path);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message().find(path), std::string::npos)
      << opened.error().message();
}

TEST_F(SqliteStoreTest, DamagedRowIsReportedNotSkipped) {
  ASSERT_TRUE(store_->CreateInstance(MakeInstance("bad", "000000000000000b")));
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path_.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE instances SET config = '{\"name\": 5}'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto got = store_->GetInstance("bad");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kInternal);
  EXPECT_NE(got.error().message().find("bad"), std::string::npos);
  EXPECT_FALSE(store_->ListInstances());
}

TEST_F(SqliteStoreTest, TokensCrud) {
  ASSERT_TRUE(store_->CreateToken(MakeToken("id-b", "ci", "hash-b", 20)));
  ASSERT_TRUE(store_->CreateToken(MakeToken("id-a", "admin", "hash-a", 10)));

  auto found = store_->FindTokenByHash("hash-b");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, "id-b");
  EXPECT_EQ(found->name, "ci");
  EXPECT_EQ(found->created_at, 20);
  auto missing = store_->FindTokenByHash("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message().find("nope"),
            std::string::npos);  // hash not echoed

  auto list = store_->ListTokens();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "admin");  // ordered by creation time
  EXPECT_EQ((*list)[1].name, "ci");

  auto dup_name = store_->CreateToken(MakeToken("id-c", "ci", "hash-c", 30));
  ASSERT_FALSE(dup_name);
  EXPECT_EQ(dup_name.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(dup_name.error().message().find("'ci'"), std::string::npos);
  auto dup_hash = store_->CreateToken(MakeToken("id-d", "other", "hash-a", 30));
  ASSERT_FALSE(dup_hash);
  EXPECT_EQ(dup_hash.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->ListTokens()->size(), 2u);

  ASSERT_TRUE(store_->DeleteToken("id-a"));  // by id
  EXPECT_FALSE(store_->FindTokenByHash("hash-a"));
  ASSERT_TRUE(store_->DeleteToken("ci"));  // by name
  EXPECT_FALSE(store_->FindTokenByHash("hash-b"));
  EXPECT_TRUE(store_->ListTokens()->empty());
  auto again = store_->DeleteToken("ci");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, ConcurrentCallersStayConsistent) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        std::string name = "vm-" + std::to_string(t) + "-" + std::to_string(i);
        char id[17];
        std::snprintf(id, sizeof(id), "%08x%08x", t, i);
        if (!store_->CreateInstance(MakeInstance(name, id))) ++failures;
        auto list = store_->ListInstances();
        if (!list || list->empty()) ++failures;
        auto got = store_->GetInstance(name);
        if (!got || got->id != id) ++failures;
        // Keep every 10th so the final state has known content.
        if (i % 10 != 0 && !store_->DeleteInstance(name)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto list = store_->ListInstances();
  ASSERT_TRUE(list);
  std::set<std::string> names;
  for (const auto& inst : *list) names.insert(inst.name());
  std::set<std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kIterations; i += 10) {
      expected.insert("vm-" + std::to_string(t) + "-" + std::to_string(i));
    }
  }
  EXPECT_EQ(names, expected);
  EXPECT_TRUE(store_->CheckIntegrity());
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileSeeEachOther) {
  // vireod holds one store, but an admin tool may open the same file.
  auto second = SqliteStore::Open(db_path_);
  ASSERT_TRUE(second);
  ASSERT_TRUE(
      store_->CreateInstance(MakeInstance("shared", "0000000000000005")));
  auto got = (*second)->GetInstance("shared");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, "0000000000000005");
}

TEST_F(SqliteStoreTest, ObjectsRoundTripAndConflict) {
  ASSERT_TRUE(store_->CreateObject("image", "deb", Json{{"size", 1}}));
  auto dup = store_->CreateObject("image", "deb", Json{{"size", 2}});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  // Same name, other kind: independent.
  ASSERT_TRUE(store_->CreateObject("network", "deb", Json{{"x", 1}}));
  ASSERT_TRUE(store_->UpdateObject("image", "deb", Json{{"size", 3}}));
  EXPECT_EQ((*store_->GetObject("image", "deb"))["size"], 3);
  auto list = store_->ListObjects("image");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  ASSERT_TRUE(store_->DeleteObject("image", "deb"));
  EXPECT_EQ(store_->GetObject("image", "deb").error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteObject("image", "deb").error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->UpdateObject("image", "deb", Json{}).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ((*store_->GetObject("network", "deb"))["x"], 1);
}

}  // namespace
}  // namespace vireo
