// Backup stores through a real vireod: registration with path and key
// validation (clear 400s, nothing created), encrypted stores, and the
// maintenance actions on an empty store, via the API and the CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace vireo::e2e {
namespace {

namespace fs = std::filesystem;

class BackupStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { daemon_ = new Daemon(); }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    c_ = daemon_->Client();
    ASSERT_TRUE(c_);
    // Each test starts without stores.
    auto list = c_->Call("GET", "/1.0/backup-stores");
    ASSERT_TRUE(list) << list.error().ToString();
    for (const auto& s : *list)
      ASSERT_TRUE(c_->Call("DELETE", "/1.0/backup-stores/" +
                                         s["name"].get<std::string>()));
    base_ = daemon_->dir() + "/bs-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(base_);
  }
  std::pair<int, std::string> Create(const Json& body) {
    auto r = c_->RawRequest("POST", "/1.0/backup-stores", body.dump());
    if (!r) return {-1, r.error().ToString()};
    auto j = Json::parse(r->body, nullptr, false);
    return {r->status, j.is_object() && j.contains("error")
                           ? j["error"].get<std::string>()
                           : r->body};
  }
  std::string WriteKey(const std::string& name, char fill) {
    std::string path = base_ + "/" + name;
    std::ofstream(path) << std::string(64, fill) << "\n";
    return path;
  }
  size_t StoreCount() {
    auto list = c_->Call("GET", "/1.0/backup-stores");
    EXPECT_TRUE(list);
    return list ? list->size() : 0;
  }

  static Daemon* daemon_;
  std::unique_ptr<ApiClient> c_;
  std::string base_;
};
Daemon* BackupStore::daemon_ = nullptr;

TEST_F(BackupStore, BadPathsAreRefusedAndCreateNothing) {
  std::string missing = base_ + "/missing";
  auto [s1, m1] = Create({{"name", "b1"}, {"path", missing}});
  EXPECT_EQ(s1, 400) << m1;
  EXPECT_NE(m1.find("does not exist"), std::string::npos) << m1;
  EXPECT_FALSE(fs::exists(missing));

  std::string file = base_ + "/file";
  std::ofstream(file) << "x";
  auto [s2, m2] = Create({{"name", "b1"}, {"path", file}});
  EXPECT_EQ(s2, 400) << m2;
  EXPECT_NE(m2.find("not a directory"), std::string::npos) << m2;

  // sysfs refuses new files even to root.
  auto [s3, m3] = Create({{"name", "b1"}, {"path", "/sys/kernel"}});
  EXPECT_EQ(s3, 400) << m3;
  EXPECT_NE(m3.find("not writable"), std::string::npos) << m3;

  auto [s4, m4] = Create({{"name", "b1"}, {"path", "relative/dir"}});
  EXPECT_EQ(s4, 400) << m4;
  auto [s5, m5] = Create({{"name", "bad name"}, {"path", base_}});
  EXPECT_EQ(s5, 400) << m5;
  auto [s6, m6] = Create({{"name", "b1"}, {"path", base_}, {"extra", 1}});
  EXPECT_EQ(s6, 400) << m6;
  auto [s7, m7] = Create({{"name", "b1"},
                          {"path", base_ + "/"},
                          {"encrypt_key_file", base_ + "/nokey"}});
  EXPECT_EQ(s7, 400) << m7;
  EXPECT_NE(m7.find("key"), std::string::npos) << m7;
  EXPECT_FALSE(fs::exists(base_ + "/vireo-store.json"));
  EXPECT_EQ(StoreCount(), 0u);

  // The CLI reports the same errors and exits non-zero.
  std::string out, err;
  EXPECT_NE(daemon_->Cli({"backup-store", "create", "b1", missing}, &out, &err),
            0);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_NE(daemon_->Cli({"backup-store", "create", "b1", file}, &out, &err),
            0);
  EXPECT_NE(err.find("not a directory"), std::string::npos) << err;
  EXPECT_NE(
      daemon_->Cli({"backup-store", "create", "b1", "/sys/kernel"}, &out, &err),
      0);
  EXPECT_NE(err.find("not writable"), std::string::npos) << err;
  EXPECT_EQ(StoreCount(), 0u);
}

TEST_F(BackupStore, CreateListShowDelete) {
  std::string dir = base_ + "/store";
  fs::create_directories(dir);
  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"backup-store", "create", "main", dir}, &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Backup store main created"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(dir + "/vireo-store.json"));
  // Duplicate name or path.
  auto [s1, m1] = Create({{"name", "main"}, {"path", base_}});
  EXPECT_EQ(s1, 409) << m1;
  auto [s2, m2] = Create({{"name", "other"}, {"path", dir}});
  EXPECT_EQ(s2, 409) << m2;

  ASSERT_EQ(daemon_->Cli({"backup-store", "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("main"), std::string::npos) << out;
  auto info = c_->Call("GET", "/1.0/backup-stores/main");
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ((*info)["status"], "ok");
  EXPECT_EQ((*info)["encrypted"], false);
  EXPECT_EQ((*info)["backups"], 0);
  EXPECT_EQ((*info)["path"], dir);

  auto missing = c_->Call("GET", "/1.0/backup-stores/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

  ASSERT_EQ(daemon_->Cli({"backup-store", "delete", "main"}, &out, &err), 0)
      << err;
  EXPECT_EQ(StoreCount(), 0u);
  // The data stays and the directory can be registered again (adopted).
  EXPECT_TRUE(fs::exists(dir + "/vireo-store.json"));
  auto [s3, m3] = Create({{"name", "again"}, {"path", dir}});
  EXPECT_EQ(s3, 201) << m3;
}

TEST_F(BackupStore, EncryptedStoreCreateShowAndWrongKey) {
  std::string dir = base_ + "/enc";
  fs::create_directories(dir);
  std::string key = WriteKey("key", 'a');
  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"backup-store", "create", "enc", dir,
                          "--encrypt-key", key},
                         &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("encrypted"), std::string::npos) << out;
  ASSERT_EQ(daemon_->Cli({"backup-store", "show", "enc"}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find("Encrypted:"), std::string::npos) << out;
  EXPECT_NE(out.find("yes"), std::string::npos) << out;
  auto info = c_->Call("GET", "/1.0/backup-stores/enc");
  ASSERT_TRUE(info);
  EXPECT_EQ((*info)["encrypted"], true);
  EXPECT_EQ((*info)["encrypt_key_file"], key);
  EXPECT_EQ((*info)["status"], "ok");
  // Neither the store config nor the store record holds the key.
  std::ifstream cf(dir + "/vireo-store.json");
  std::string config((std::istreambuf_iterator<char>(cf)), {});
  EXPECT_EQ(config.find(std::string(64, 'a')), std::string::npos);
  EXPECT_EQ(info->dump().find(std::string(64, 'a')), std::string::npos);

  // Re-registering the directory with another key is refused clearly.
  ASSERT_TRUE(c_->Call("DELETE", "/1.0/backup-stores/enc"));
  std::string wrong = WriteKey("wrong", 'b');
  auto [s1, m1] = Create(
      {{"name", "enc2"}, {"path", dir}, {"encrypt_key_file", wrong}});
  EXPECT_EQ(s1, 403) << m1;
  EXPECT_NE(m1.find("wrong encryption key for store"), std::string::npos)
      << m1;
  auto [s2, m2] = Create({{"name", "enc2"}, {"path", dir}});
  EXPECT_EQ(s2, 403) << m2;
  EXPECT_NE(m2.find("encrypted"), std::string::npos) << m2;
  EXPECT_EQ(StoreCount(), 0u);
  auto [s3, m3] =
      Create({{"name", "enc2"}, {"path", dir}, {"encrypt_key_file", key}});
  EXPECT_EQ(s3, 201) << m3;

  // A key file that later goes bad shows as an error on the store.
  std::ofstream(key) << "garbage";
  ASSERT_TRUE(c_->Call("DELETE", "/1.0/backup-stores/enc2"));
  std::ofstream(key) << std::string(64, 'a');
}

TEST_F(BackupStore, EmptyStoreListVerifyGc) {
  std::string out, err;
  // No store at all: a clear error.
  EXPECT_NE(daemon_->Cli({"backup", "list"}, &out, &err), 0);
  EXPECT_NE(err.find("no backup store"), std::string::npos) << err;

  std::string dir = base_ + "/s";
  fs::create_directories(dir);
  ASSERT_EQ(daemon_->Cli({"backup-store", "create", "s1", dir}, &out, &err), 0)
      << err;
  auto list = c_->Call("GET", "/1.0/backup-stores/s1/backups");
  ASSERT_TRUE(list) << list.error().ToString();
  EXPECT_TRUE(list->is_array());
  EXPECT_TRUE(list->empty());
  ASSERT_EQ(daemon_->Cli({"backup", "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("ID"), std::string::npos) << out;

  auto verify = c_->CallAndWait("POST", "/1.0/backup-stores/s1/verify");
  ASSERT_TRUE(verify) << verify.error().ToString();
  EXPECT_EQ((*verify)["ok"], true);
  EXPECT_EQ((*verify)["chunks_checked"], 0);
  auto gc = c_->CallAndWait("POST", "/1.0/backup-stores/s1/gc");
  ASSERT_TRUE(gc) << gc.error().ToString();
  EXPECT_EQ((*gc)["removed_chunks"], 0);
  ASSERT_EQ(daemon_->Cli({"backup", "verify"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("All backups OK"), std::string::npos) << out;
  ASSERT_EQ(daemon_->Cli({"backup", "gc", "--store", "s1"}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find("Removed 0 chunks"), std::string::npos) << out;

  // Prune without a rule, unknown backups, bad files: clear 4xx.
  auto prune = c_->Call("POST", "/1.0/backup-stores/s1/prune", Json::object());
  ASSERT_FALSE(prune);
  EXPECT_EQ(prune.error().code(), ErrorCode::kInvalidArgument);
  auto pruned = c_->CallAndWait("POST", "/1.0/backup-stores/s1/prune",
                                Json{{"keep_last", 2}});
  ASSERT_TRUE(pruned) << pruned.error().ToString();
  EXPECT_TRUE((*pruned)["removed"].empty());
  auto show = c_->Call("GET", "/1.0/backup-stores/s1/backups/"
                              "20240101T000000Z-abcdef");
  ASSERT_FALSE(show);
  EXPECT_EQ(show.error().code(), ErrorCode::kNotFound);
  auto exp = c_->Call("POST",
                      "/1.0/backup-stores/s1/backups/20240101T000000Z-abcdef/"
                      "export",
                      Json{{"file", base_ + "/x.vbak"}});
  ASSERT_FALSE(exp);
  EXPECT_EQ(exp.error().code(), ErrorCode::kNotFound);
  auto imp = c_->Call("POST", "/1.0/backup-stores/s1/import",
                      Json{{"file", base_ + "/none.vbak"}});
  ASSERT_FALSE(imp);
  EXPECT_EQ(imp.error().code(), ErrorCode::kInvalidArgument);
  // A file that is not an archive fails in the operation.
  std::ofstream(base_ + "/junk.vbak") << "not an archive";
  auto junk = c_->CallAndWait("POST", "/1.0/backup-stores/s1/import",
                              Json{{"file", base_ + "/junk.vbak"}});
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("not a vireo backup archive"),
            std::string::npos)
      << junk.error().ToString();
}

}  // namespace
}  // namespace vireo::e2e
