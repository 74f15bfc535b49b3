// Backup jobs with real guests (TCG): a live, consistent backup of a
// running VM's disks, an incremental one driven by dirty bitmaps, restore
// byte-identical to the backup point, and refusals that change nothing.
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1ull << 20;

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

std::string DiskPath(ApiClient& c, const std::string& vm, int i) {
  return GetInstance(c, vm)["config"]["disks"][i]["path"].get<std::string>();
}

TEST(Backup, LiveIncrementalRestoreAndRefusals) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));

  // A 128 MiB data disk full of random bytes (from the host), and an empty
  // second disk: two disks whose point in time must match.
  std::string raw = d.dir() + "/seed.raw";
  ShellOut("head -c 128M /dev/urandom > " + raw);
  Json spec = GuestSpec("bk");
  spec["disks"] = Json::array({{{"source", raw}}, {{"size", "32M"}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/bk/state",
                             Json{{"action", "start"}}));
  ASSERT_TRUE(WaitForLog(*c, "bk", "VIREO-GUEST-UP", 120s) &&
              WaitForLog(*c, "bk", "built-in shell", 60s))
      << ConsoleLog(*c, "bk");

  auto t0 = std::chrono::steady_clock::now();
  Json b1 = CliJson(d, {"backup", "create", "bk"});
  auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count();
  ASSERT_EQ(b1["disks"].size(), 2u) << b1.dump();
  EXPECT_EQ(b1["disks"][0]["bytes_read"].get<uint64_t>(), 128 * kMiB);
  EXPECT_NE(b1["note"].get<std::string>().find("full read"), std::string::npos);
  uint64_t store1 = DirBytes(store);

  // Rewrite ~5% of the data disk inside the guest (6 MiB at 20 MiB: 24
  // whole 256 KiB chunks), and something on the second disk.
  auto out = GuestRun(*c, "bk",
                      "dd if=/dev/urandom of=/dev/vda bs=1M count=6 seek=20 "
                      "conv=fsync 2>/dev/null; echo hello-backup | dd "
                      "of=/dev/vdb conv=fsync 2>/dev/null; sync; echo wrote",
                      120s);
  ASSERT_TRUE(out && out->find("wrote") != std::string::npos)
      << ConsoleLog(*c, "bk");

  // Freeze the expected state: paused, the disks are what a backup taken
  // now must contain (the guest is idle at its prompt after resuming).
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/bk/state",
                             Json{{"action", "pause"}}));
  std::string exp0 = d.dir() + "/exp0.qcow2", exp1 = d.dir() + "/exp1.qcow2";
  ShellOut("qemu-img convert -U -O qcow2 " + DiskPath(*c, "bk", 0) + " " +
           exp0);
  ShellOut("qemu-img convert -U -O qcow2 " + DiskPath(*c, "bk", 1) + " " +
           exp1);
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/bk/state",
                             Json{{"action", "resume"}}));

  t0 = std::chrono::steady_clock::now();
  Json b2 = CliJson(d, {"backup", "create", "bk", "--store", "st"});
  auto incr_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count();
  ASSERT_EQ(b2["disks"].size(), 2u) << b2.dump();
  EXPECT_TRUE(b2["incremental"].get<bool>()) << b2.dump();
  // Exactly the rewritten chunks (the guest writes nothing else to the raw
  // disk); one chunk of slack in case the guest's page cache writes back
  // differently aligned.
  uint64_t read0 = b2["disks"][0]["bytes_read"].get<uint64_t>();
  EXPECT_GE(read0, 6 * kMiB) << b2.dump();
  EXPECT_LE(read0, 6 * kMiB + 256 * 1024) << b2.dump();
  EXPECT_LE(b2["disks"][1]["bytes_read"].get<uint64_t>(), 256 * 1024);
  EXPECT_EQ(b2["disks"][0]["chunk_size"].get<uint64_t>(), 256 * 1024);
  uint64_t store2 = DirBytes(store);
  // 6 MiB of random bytes on a 128 MiB random disk: ~4.7% more.
  EXPECT_GE(store2 - store1, store1 * 4 / 100) << store1 << " " << store2;
  EXPECT_LE(store2 - store1, store1 * 6 / 100) << store1 << " " << store2;
  std::cout << "full backup " << full_ms << " ms, incremental " << incr_ms
            << " ms, read " << read0 << " bytes\n";

  // Delete the VM, restore it under its own name: byte-identical disks.
  ASSERT_TRUE(c->CallAndWait("DELETE", "/1.0/instances/bk?force=true"));
  std::string id2 = b2["id"];
  ASSERT_EQ(d.Cli({"backup", "restore", id2}), 0);
  ShellOut("qemu-img compare " + exp0 + " " + DiskPath(*c, "bk", 0));
  ShellOut("qemu-img compare " + exp1 + " " + DiskPath(*c, "bk", 1));

  // Restoring onto an existing name: 409, nothing overwritten.
  std::string before = ShellOut("md5sum < " + DiskPath(*c, "bk", 0));
  auto r = c->RawRequest("POST",
                         "/1.0/backup-stores/st/backups/" +
                             b1["id"].get<std::string>() + "/restore",
                         "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_EQ(ShellOut("md5sum < " + DiskPath(*c, "bk", 0)), before);

  // The first backup restores as a copy, with the seed's bytes.
  ASSERT_EQ(d.Cli({"backup", "restore", b1["id"].get<std::string>(), "bk1"}),
            0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "bk1", 0));

  // A VM whose disk file was removed: a clear error.
  std::string gone = DiskPath(*c, "bk1", 1);
  ASSERT_EQ(::unlink(gone.c_str()), 0);
  std::string err;
  EXPECT_NE(d.Cli({"backup", "create", "bk1"}, nullptr, &err), 0);
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
}

// A stopped VM (qemu-nbd path) into an encrypted store: the offline
// incremental reads only what qemu-io changed; a damaged chunk is named by
// verify for the backup using it only; the other backup still restores.
TEST(Backup, OfflineEncryptedIncrementalAndDamage) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/encstore", key = d.dir() + "/key";
  fs::create_directories(store);
  ShellOut("printf '%064d' 0 | tr 0 a > " + key);
  ASSERT_EQ(
      d.Cli({"backup-store", "create", "enc", store, "--encrypt-key", key}), 0);
  std::string raw = d.dir() + "/seed.raw";
  ShellOut("head -c 32M /dev/urandom > " + raw);
  Json spec = GuestSpec("off");
  spec["disks"] = Json::array({{{"source", raw}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));

  Json b1 = CliJson(d, {"backup", "create", "off"});
  ASSERT_EQ(b1["disks"].size(), 1u) << b1.dump();
  EXPECT_EQ(b1["disks"][0]["bytes_read"].get<uint64_t>(), 32 * kMiB);
  ShellOut("qemu-io -f qcow2 -c 'write -P 0x33 8M 4M' " +
           DiskPath(*c, "off", 0) + " >/dev/null");
  Json b2 = CliJson(d, {"backup", "create", "off"});
  EXPECT_TRUE(b2["incremental"].get<bool>()) << b2.dump();
  EXPECT_EQ(b2["disks"][0]["bytes_read"].get<uint64_t>(), 4 * kMiB)
      << b2.dump();

  // The newest chunk file is the one only b2 uses.
  std::string chunk =
      ShellOut("find " + store +
               "/chunks -type f -printf '%T@ %p\\n' | sort -n | "
               "tail -1 | cut -d' ' -f2");
  while (!chunk.empty() && chunk.back() == '\n') chunk.pop_back();
  ASSERT_FALSE(chunk.empty());
  ShellOut("printf 'garbage' | dd of=" + chunk +
           " bs=1 seek=40 conv=notrunc 2>/dev/null");
  auto verify = c->CallAndWait("POST", "/1.0/backup-stores/enc/verify");
  ASSERT_TRUE(verify) << verify.error().ToString();
  std::string damaged = (*verify)["damaged"].dump();
  EXPECT_NE(damaged.find(b2["id"].get<std::string>()), std::string::npos)
      << verify->dump();
  EXPECT_EQ(damaged.find(b1["id"].get<std::string>()), std::string::npos)
      << verify->dump();
  ASSERT_EQ(d.Cli({"backup", "restore", b1["id"].get<std::string>(), "r1"}), 0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "r1", 0));

  // Another valid key in the key file: once the daemon reopens the store
  // (after a restart; open stores are cached), restore and show refuse with
  // a clear error and create nothing.
  pid_t before = d.pid();
  ShellOut("printf '%064d' 0 | tr 0 b > " + key);
  d.Stop();
  d.Start();
  ASSERT_NE(d.pid(), before);
  c = d.Client();
  std::string out, err;
  EXPECT_NE(d.Cli({"backup", "restore", b1["id"].get<std::string>(), "r2"},
                  &out, &err),
            0)
      << out;
  EXPECT_NE(err.find("wrong encryption key"), std::string::npos) << err;
  EXPECT_FALSE(c->Call("GET", "/1.0/instances/r2"));
  auto shown = c->Call("GET", "/1.0/backup-stores/enc");
  ASSERT_TRUE(shown) << shown.error().ToString();
  EXPECT_EQ((*shown)["status"], "error") << shown->dump();
  EXPECT_NE((*shown)["error"].get<std::string>().find("wrong encryption key"),
            std::string::npos)
      << shown->dump();
  // The right key back: the store and b1 are intact.
  ShellOut("printf '%064d' 0 | tr 0 a > " + key);
  d.Stop();
  d.Start();
  c = d.Client();
  ASSERT_EQ(d.Cli({"backup", "restore", b1["id"].get<std::string>(), "r2"}), 0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "r2", 0));
}

// A base backup made with 4 MiB chunks (before chunk sizes were recorded and
// shrunk) cannot serve a 256 KiB incremental: the next backup reads the disk
// in full and says why, and the one after is incremental again. The old
// base is simulated by rewriting the first manifest of a plain store (its
// index then names no chunks: only its chunk size matters here).
TEST(Backup, BaseWithOtherChunkSizeMeansFullRead) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  std::string raw = d.dir() + "/seed.raw";
  ShellOut("head -c 16M /dev/urandom > " + raw);
  Json spec = GuestSpec("cs");
  spec["disks"] = Json::array({{{"source", raw}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));
  Json b1 = CliJson(d, {"backup", "create", "cs"});
  ASSERT_EQ(b1["disks"][0]["chunk_size"], 256 * 1024) << b1.dump();

  std::string mf = store + "/backups/" + b1["id"].get<std::string>() + ".json";
  Json m = Json::parse(std::ifstream(mf));
  m["body"]["backup"]["disks"][0].erase("chunk_size");  // = 4 MiB
  m["body"]["index"][0] = Json::array({"", "", "", ""});
  std::string body =
      m["body"].dump(-1, ' ', false, Json::error_handler_t::replace);
  unsigned char sum[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), sum);
  std::string hex;
  for (unsigned char b : sum) {
    char two[3];
    snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  m["sha256"] = hex;
  std::ofstream(mf, std::ios::trunc) << m.dump(1) << "\n";
  Json old = CliJson(d, {"backup", "show", b1["id"].get<std::string>()});
  ASSERT_EQ(old["disks"][0]["chunk_size"], 4 * kMiB) << old.dump();

  ShellOut("qemu-io -f qcow2 -c 'write -P 0x44 1M 64k' " +
           DiskPath(*c, "cs", 0) + " >/dev/null");
  Json b2 = CliJson(d, {"backup", "create", "cs"});
  EXPECT_FALSE(b2["incremental"].get<bool>()) << b2.dump();
  EXPECT_EQ(b2["disks"][0]["bytes_read"].get<uint64_t>(), 16 * kMiB);
  EXPECT_NE(b2["note"].get<std::string>().find("uses 4096 KiB chunks"),
            std::string::npos)
      << b2.dump();
  ShellOut("qemu-io -f qcow2 -c 'write -P 0x55 2M 64k' " +
           DiskPath(*c, "cs", 0) + " >/dev/null");
  Json b3 = CliJson(d, {"backup", "create", "cs"});
  EXPECT_TRUE(b3["incremental"].get<bool>()) << b3.dump();
  EXPECT_EQ(b3["disks"][0]["bytes_read"].get<uint64_t>(), 256 * 1024);
  ASSERT_EQ(d.Cli({"backup", "restore", b3["id"].get<std::string>(), "r3"}), 0);
  ShellOut("qemu-img compare " + DiskPath(*c, "cs", 0) + " " +
           DiskPath(*c, "r3", 0));
}

// kill -9 of vireod in the middle of a live backup (reads are paced by
// --backup-rate-limit, so the kill cannot land after the commit): after a
// restart the interrupted backup is gone without a trace, the earlier backup
// verifies and restores, and the next backup removes QEMU's leftovers
// (fleecing nodes, NBD export, stale bitmap) and restores byte-identical.
TEST(Backup, KillDuringLiveBackup) {
  // 256 MiB at 32 MiB/s: each full backup takes about 8 s.
  Daemon d({"--backup-rate-limit", "32"});
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  std::string raw = d.dir() + "/big.raw";
  ShellOut("head -c 256M /dev/urandom > " + raw);
  Json spec = GuestSpec("k");
  spec["disks"] = Json::array({{{"source", raw}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));
  Json b1 = CliJson(d, {"backup", "create", "k"});  // offline, full
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/k/state",
                             Json{{"action", "start"}}));
  std::string store2 = d.dir() + "/store2";
  ASSERT_TRUE(CreateBackupStore(d, "st2", store2));
  auto op = c->Call("POST", "/1.0/instances/k/backups", Json{{"store", "st2"}});
  ASSERT_TRUE(op) << op.error().ToString();
  std::string op_url = (*op)["operation"].get<std::string>();
  // Wait until disk data flows, then kill while it still does.
  Json state;
  for (int i = 0; i < 100; ++i) {
    auto now = c->Call("GET", op_url);
    ASSERT_TRUE(now) << now.error().ToString();
    state = *now;
    if (state["metadata"].dump().find("reading disk") != std::string::npos)
      break;
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1s);
  state = *c->Call("GET", op_url);
  ASSERT_EQ(state["status"], "Running") << state.dump();
  ASSERT_NE(state["metadata"].dump().find("reading disk"), std::string::npos)
      << state.dump();
  std::string work_dir = d.dir() + "/run/backup/live-" +
                         GetInstance(*c, "k")["id"].get<std::string>();
  d.Stop(true);
  ASSERT_TRUE(fs::exists(work_dir))
      << "the killed backup's work dir should still be there";
  d.Start();
  c = d.Client();
  ASSERT_TRUE(c);
  EXPECT_EQ(GetInstance(*c, "k")["status"]["state"], "running");

  // Nothing of the interrupted backup is visible; the earlier one is whole.
  auto listed = c->Call("GET", "/1.0/backup-stores/st2/backups");
  ASSERT_TRUE(listed) << listed.error().ToString();
  EXPECT_EQ(listed->size(), 0u) << listed->dump();
  auto verify = c->CallAndWait("POST", "/1.0/backup-stores/st/verify");
  ASSERT_TRUE(verify) << verify.error().ToString();
  EXPECT_EQ((*verify)["damaged"].size(), 0u) << verify->dump();

  std::string log_before = ShellOut("cat " + d.dir() + "/vireod.log");
  Json b3 = CliJson(d, {"backup", "create", "k", "--store", "st2"});
  ASSERT_EQ(b3["disks"].size(), 1u) << b3.dump();
  EXPECT_EQ(b3["disks"][0]["bytes_read"].get<uint64_t>(), 256 * kMiB);
  EXPECT_NE(b3["note"].get<std::string>().find("first backup"),
            std::string::npos)
      << b3.dump();
  std::string log =
      ShellOut("cat " + d.dir() + "/vireod.log").substr(log_before.size());
  EXPECT_NE(log.find("removed leftover backup node vbf"), std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(work_dir));
  auto verify2 = c->CallAndWait("POST", "/1.0/backup-stores/st2/verify");
  ASSERT_TRUE(verify2) << verify2.error().ToString();
  EXPECT_EQ((*verify2)["damaged"].size(), 0u) << verify2->dump();

  ASSERT_EQ(d.Cli({"backup", "restore", b1["id"].get<std::string>(), "k1"}), 0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "k1", 0));
  ASSERT_EQ(d.Cli({"backup", "restore", b3["id"].get<std::string>(), "k3",
                   "--store", "st2"}),
            0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "k3", 0));
}

// Scheduled backups from the instance options: every 2 s to store "st",
// pruned to the last 2 after each run. The scheduler ticks every 200 ms
// here (60 s by default).
TEST(Backup, ScheduledBackupsArePrunedToKeepLast) {
  Daemon d({"--backup-tick-ms", "200"});
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  std::string raw = d.dir() + "/small.raw";
  ShellOut("head -c 8M /dev/urandom > " + raw);
  Json spec = GuestSpec("sch");
  spec["disks"] = Json::array({{{"source", raw}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));
  std::string out, err;
  EXPECT_NE(
      d.Cli({"config", "set", "sch", "backups.schedule=every 0x"}, &out, &err),
      0);
  EXPECT_NE(err.find("backups.schedule"), std::string::npos) << err;
  ASSERT_EQ(d.Cli({"config", "set", "sch", "backups.schedule=every 2s",
                   "backups.store=st", "backups.keep-last=2"},
                  &out, &err),
            0)
      << err;

  // Three scheduled runs, counted in the log; the store keeps two.
  auto runs = [&] {
    std::string log = ShellOut("cat " + d.dir() + "/vireod.log");
    size_t n = 0;
    for (size_t p = 0;
         (p = log.find("scheduled backup of 'sch'", p)) != std::string::npos;
         ++p)
      ++n;
    return n;
  };
  for (int i = 0; i < 300 && runs() < 3; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_GE(runs(), 3u);
  Json list;
  for (int i = 0; i < 100; ++i) {  // the third run's prune may be under way
    auto l = c->Call("GET", "/1.0/backup-stores/st/backups");
    ASSERT_TRUE(l) << l.error().ToString();
    list = *l;
    if (list.size() == 2) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(list.size(), 2u) << list.dump();
  std::string newest = list.back().is_string() ? list.back().get<std::string>()
                                               : list.back().value("id", "");
  ASSERT_FALSE(newest.empty()) << list.dump();
  newest = newest.substr(newest.rfind('/') + 1);
  ASSERT_EQ(d.Cli({"backup", "restore", newest, "sch2"}), 0);
  ShellOut("qemu-img compare " + raw + " " + DiskPath(*c, "sch2", 0));

  // Unsetting the schedule stops it.
  ASSERT_EQ(d.Cli({"config", "unset", "sch", "backups.schedule"}), 0);
  std::this_thread::sleep_for(500ms);  // a run in flight may still finish
  size_t before = runs();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(runs(), before);
}

}  // namespace
}  // namespace vireo::e2e
