// Backup stores through a real vireod: registration with path and key
// validation (clear 400s, nothing created), encrypted stores, and the
// maintenance actions on an empty store, via the API and the CLI.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "harness.h"

namespace vireo::e2e {
namespace {

namespace fs = std::filesystem;

// Writes a backup archive (docs/backups.md) holding one 5000-byte disk; the
// chunk is a zstd frame made of one raw block, so the test needs no zstd.
void WriteArchive(const std::string& path, const std::string& id,
                  const std::string& instance, const std::string& data) {
  std::string out = "VIREOARC";
  auto put32 = [&](uint32_t v) { out.append(reinterpret_cast<char*>(&v), 4); };
  auto put64 = [&](uint64_t v) { out.append(reinterpret_cast<char*>(&v), 8); };
  auto record = [&](uint8_t type, uint64_t index, const std::string& payload) {
    out.push_back(static_cast<char>(type));
    put32(0);
    put64(index);
    put64(payload.size());
    out += payload;
  };
  put32(1);
  put32(0);
  Json backup = {
      {"id", id},
      {"instance", instance},
      {"created_at", 1700000000},
      {"config", {{"name", instance}}},
      {"disks", {{{"name", "root"}, {"virtual_size", data.size()}}}}};
  record(1, 0, Json{{"backup", backup}}.dump());
  std::string frame;
  uint32_t magic = 0xFD2FB528;
  frame.append(reinterpret_cast<char*>(&magic), 4);
  frame.push_back(static_cast<char>(0xA0));  // single segment, 4-byte size
  uint32_t size = static_cast<uint32_t>(data.size());
  frame.append(reinterpret_cast<char*>(&size), 4);
  uint32_t block = 1 | (size << 3);  // last block, raw
  frame.append(reinterpret_cast<char*>(&block), 3);
  frame += data;
  record(2, 0, frame);
  unsigned char sum[32];
  SHA256(reinterpret_cast<const unsigned char*>(out.data()), out.size(), sum);
  record(3, 0, std::string(reinterpret_cast<char*>(sum), 32));
  std::ofstream(path, std::ios::binary) << out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

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
      ASSERT_TRUE(c_->Call(
          "DELETE", "/1.0/backup-stores/" + s["name"].get<std::string>()));
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
  ASSERT_EQ(
      daemon_->Cli({"backup-store", "create", "enc", dir, "--encrypt-key", key},
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
  auto [s1, m1] =
      Create({{"name", "enc2"}, {"path", dir}, {"encrypt_key_file", wrong}});
  EXPECT_EQ(s1, 403) << m1;
  EXPECT_NE(m1.find("wrong encryption key for store"), std::string::npos) << m1;
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
  auto show = c_->Call("GET",
                       "/1.0/backup-stores/s1/backups/"
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

TEST_F(BackupStore, ImportListShowVerifyExportDeleteGc) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    std::string dir = base_ + (encrypted ? "/enc" : "/plain");
    fs::create_directories(dir);
    std::vector<std::string> create = {"backup-store", "create", "st", dir};
    if (encrypted) {
      create.push_back("--encrypt-key");
      create.push_back(WriteKey("k", 'c'));
    }
    std::string out, err;
    ASSERT_EQ(daemon_->Cli(create, &out, &err), 0) << err;
    std::string id = "20231114T221320Z-0a0b0c";
    std::string data(5000, 'v');
    data.replace(0, 10, "vireo-data");
    std::string archive = base_ + "/in.vbak";
    WriteArchive(archive, id, "vm-imp", data);
    ASSERT_EQ(daemon_->Cli({"backup", "import", archive}, &out, &err), 0)
        << err;
    EXPECT_NE(out.find("Imported backup " + id), std::string::npos) << out;

    ASSERT_EQ(daemon_->Cli({"backup", "list", "vm-imp"}, &out, &err), 0) << err;
    EXPECT_NE(out.find(id), std::string::npos) << out;
    auto list = c_->Call("GET", "/1.0/backup-stores/st/backups?instance=other");
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->empty());
    ASSERT_EQ(daemon_->Cli({"backup", "show", id}, &out, &err), 0) << err;
    EXPECT_NE(out.find("vm-imp"), std::string::npos) << out;
    auto info = c_->Call("GET", "/1.0/backup-stores/st");
    ASSERT_TRUE(info);
    EXPECT_EQ((*info)["backups"], 1);
    EXPECT_EQ((*info)["chunks"], 1);
    ASSERT_EQ(daemon_->Cli({"backup", "verify"}, &out, &err), 0) << err;
    EXPECT_NE(out.find("1 chunks"), std::string::npos) << out;

    // Export twice from the same backup content: identical archives, and
    // export -> delete -> import restores the same backup.
    std::string e1 = base_ + "/e1.vbak", e2 = base_ + "/e2.vbak";
    ASSERT_EQ(daemon_->Cli({"backup", "export", id, e1}, &out, &err), 0) << err;
    EXPECT_NE(daemon_->Cli({"backup", "export", id, e1}, &out, &err), 0);
    EXPECT_NE(err.find("already exists"), std::string::npos) << err;
    ASSERT_EQ(daemon_->Cli({"backup", "delete", id}, &out, &err), 0) << err;
    auto gc = c_->CallAndWait("POST", "/1.0/backup-stores/st/gc");
    ASSERT_TRUE(gc) << gc.error().ToString();
    EXPECT_EQ((*gc)["removed_chunks"], 1);
    ASSERT_EQ(daemon_->Cli({"backup", "import", e1}, &out, &err), 0) << err;
    ASSERT_EQ(daemon_->Cli({"backup", "export", id, e2}, &out, &err), 0) << err;
    EXPECT_EQ(ReadFile(e1), ReadFile(e2));
    EXPECT_LT(ReadFile(e1).size(), 1000u) << "archive data is compressed";

    // A damaged archive is refused and adds nothing.
    std::string bad = ReadFile(e1);
    bad[bad.size() / 2] ^= 0x40;
    std::ofstream(base_ + "/bad.vbak", std::ios::binary) << bad;
    EXPECT_NE(
        daemon_->Cli({"backup", "import", base_ + "/bad.vbak"}, &out, &err), 0);
    auto after = c_->Call("GET", "/1.0/backup-stores/st/backups");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->size(), 1u);

    // Prune keeps the newest per instance.
    ASSERT_EQ(daemon_->Cli({"backup", "import", archive}, &out, &err), 0)
        << err;  // same id taken: gets a new one
    ASSERT_EQ(daemon_->Cli({"backup", "prune", "--keep-last", "1"}, &out, &err),
              0)
        << err;
    EXPECT_NE(out.find("1 kept, 1 removed"), std::string::npos) << out;
    ASSERT_TRUE(c_->Call("DELETE", "/1.0/backup-stores/st"));
    fs::remove(e1);
    fs::remove(e2);
  }
}

}  // namespace
}  // namespace vireo::e2e
