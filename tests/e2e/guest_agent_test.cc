// Live backups with qemu-guest-agent in a real guest (TCG): the agent
// freezes the guest's ext4 data disk for the point in time, so data the
// guest had only in its page cache is in the backup; the guest is thawed
// right after. Without an answering agent the backup still succeeds, says
// it is crash-consistent and costs little extra time.
#include "engine/qemu/guest_agent.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int64_t MillisSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                               t0)
      .count();
}

// Asks the guest's agent directly, through the VM's channel socket.
Result<Json> AskAgent(const Daemon& d, ApiClient& c, const std::string& vm,
                      const std::string& command) {
  std::string id = GetInstance(c, vm)["id"];
  ASSIGN_OR_RETURN(auto agent, GuestAgentClient::Connect(d.dir() + "/run/" +
                                                         id + "/qga.sock"));
  return agent->Execute(command);
}

// Runs an idempotent command in the guest and checks its output contains
// `expect`; once more if not: under load, the guest's UART can drop typed
// characters (NOTES: GuestRun). A command that hangs (a frozen filesystem)
// still fails: both tries time out.
::testing::AssertionResult GuestRunExpect(ApiClient& c, const std::string& vm,
                                          const std::string& command,
                                          const std::string& expect) {
  std::string seen;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto out = GuestRun(c, vm, command, 60s);
    if (out && out->find(expect) != std::string::npos)
      return ::testing::AssertionSuccess();
    seen += "\n--- try " + std::to_string(attempt + 1) + ": " +
            (out ? *out : std::string("(timeout)"));
  }
  return ::testing::AssertionFailure()
         << "no '" << expect << "' from: " << command << seen
         << "\n--- console:\n"
         << ConsoleLog(c, vm);
}

// Boots a guest-kit VM with a 64 MiB data disk and an ext4 filesystem on it
// mounted at /mnt.
void BootWithFilesystem(ApiClient& c, const std::string& vm) {
  Json spec = GuestSpec(vm);
  spec["disks"] = Json::array({{{"size", "64M"}}});
  ASSERT_TRUE(c.CallAndWait("POST", "/1.0/instances", spec));
  ASSERT_TRUE(c.CallAndWait("PUT", "/1.0/instances/" + vm + "/state",
                            Json{{"action", "start"}}));
  ASSERT_TRUE(WaitForLog(c, vm, "VIREO-GUEST-UP", 120s) &&
              WaitForLog(c, vm, "VIREO-QGA-UP", 60s) &&
              WaitForLog(c, vm, "built-in shell", 60s))
      << ConsoleLog(c, vm);
  auto out = GuestRun(c, vm,
                      // busybox makes ext2; the ext4 driver mounts it.
                      "mke2fs -q /dev/vda >/dev/null 2>&1 && mount -t ext4 "
                      "/dev/vda /mnt && echo mounted-$((6*7))",
                      120s);
  ASSERT_TRUE(out && out->find("mounted-42") != std::string::npos)
      << ConsoleLog(c, vm);
}

// The file `name` on the ext4 filesystem of a restored VM's first disk.
std::string FileInBackup(const Daemon& d, ApiClient& c, const Json& backup,
                         const std::string& restored, const std::string& name) {
  EXPECT_EQ(
      d.Cli({"backup", "restore", backup["id"].get<std::string>(), restored}),
      0);
  std::string disk = GetInstance(c, restored)["config"]["disks"][0]["path"];
  std::string raw = d.dir() + "/" + restored + ".raw";
  ShellOut("qemu-img convert -O raw " + disk + " " + raw);
  auto r = RunCommand({"debugfs", "-R", "cat /" + name, raw}, 60s);
  return r && r->status.success() ? r->out : "";
}

TEST(GuestAgent, LiveBackupFreezesTheGuestFilesystemAndThaws) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  BootWithFilesystem(*c, "ga");
  if (HasFatalFailure()) return;

  // Written but not synced: only the guest's page cache has it (dirty
  // pages are written back after 30 s). The freeze flushes it to the disk
  // before the point in time.
  ASSERT_TRUE(GuestRunExpect(
      *c, "ga", "echo in-page-cache > /mnt/unsynced && echo written-$((6*7))",
      "written-42"));

  auto t0 = Clock::now();
  Json b = CliJson(d, {"backup", "create", "ga"});
  auto backup_ms = MillisSince(t0);
  std::string note = b.value("note", "");
  EXPECT_NE(note.find("filesystem-consistent (guest agent froze 1 filesystem)"),
            std::string::npos)
      << note;
  EXPECT_EQ(b.value("consistency", ""), "filesystem") << b.dump();
  // The human-readable CLI shows it too.
  std::string shown;
  ASSERT_EQ(d.Cli({"backup", "show", b["id"].get<std::string>()}, &shown), 0);
  EXPECT_NE(shown.find("filesystem-consistent"), std::string::npos) << shown;

  // Thawed: the agent says so, and the guest can write to the filesystem
  // (a frozen ext4 would block the write and the marker would never come).
  auto status = AskAgent(d, *c, "ga", "guest-fsfreeze-status");
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(*status, "thawed");
  ASSERT_TRUE(GuestRunExpect(
      *c, "ga", "echo after-$((6*7)) > /mnt/after && sync && cat /mnt/after",
      "after-42"));

  // The unsynced file is in the backup.
  EXPECT_EQ(FileInBackup(d, *c, b, "ga-restored", "unsynced"),
            "in-page-cache\n");
  std::cout << "backup with guest freeze: " << backup_ms << " ms\n";
}

TEST(GuestAgent, BackupWithoutAnAnsweringAgentIsCrashConsistentAndQuick) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  BootWithFilesystem(*c, "na");
  if (HasFatalFailure()) return;

  // With the agent: a full backup, then an incremental one with nothing
  // changed (the baseline for the time an absent agent may add).
  Json full = CliJson(d, {"backup", "create", "na"});
  EXPECT_NE(full.value("note", "").find("filesystem-consistent"),
            std::string::npos)
      << full.dump();
  auto t0 = Clock::now();
  Json with_agent = CliJson(d, {"backup", "create", "na"});
  auto with_ms = MillisSince(t0);
  EXPECT_NE(with_agent.value("note", "").find("filesystem-consistent"),
            std::string::npos)
      << with_agent.dump();

  // Kill the agent in the guest: the channel stays (QEMU still accepts
  // connections), nothing answers on it.
  // Also leave a file in the page cache, to see (not assert: writeback
  // timing) what a crash-consistent backup holds.
  ASSERT_TRUE(GuestRunExpect(*c, "na",
                             "kill $(cat /var/run/qemu-ga.pid); sleep 1; "
                             "echo in-page-cache > /mnt/unsynced && "
                             "echo killed-$((6*7))",
                             "killed-42"));
  t0 = Clock::now();
  Json without = CliJson(d, {"backup", "create", "na"});
  auto without_ms = MillisSince(t0);
  std::string note = without.value("note", "");
  EXPECT_NE(note.find("crash-consistent (no guest agent: "), std::string::npos)
      << note;
  EXPECT_EQ(without.value("consistency", ""), "crash") << without.dump();
  EXPECT_FALSE(without.value("id", "").empty());
  // The probe gives up after ~1.5 s.
  EXPECT_LT(without_ms, with_ms + 3000)
      << "with agent " << with_ms << " ms, without " << without_ms << " ms";
  std::cout << "incremental backup: with agent " << with_ms
            << " ms, agent killed " << without_ms << " ms (" << note << ")\n";
  std::cout << "unsynced file in the crash-consistent backup: '"
            << FileInBackup(d, *c, without, "na-restored", "unsynced") << "'\n";

  // Nothing was left frozen: the guest still writes.
  ASSERT_TRUE(GuestRunExpect(
      *c, "na", "echo ok-$((6*7)) > /mnt/f && sync && cat /mnt/f", "ok-42"));
}

// A guest booted without the agent (vireo.qga=0): same answer, and the
// backup of the stopped VM says nothing about consistency (it is off).
TEST(GuestAgent, GuestWithoutAgent) {
  Daemon d;
  auto c = d.Client();
  std::string store = d.dir() + "/store";
  ASSERT_TRUE(CreateBackupStore(d, "st", store));
  Json spec = GuestSpec("plain", "vireo.qga=0");
  spec["disks"] = Json::array({{{"size", "16M"}}});
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", spec));
  Json offline = CliJson(d, {"backup", "create", "plain"});
  EXPECT_EQ(offline.value("note", "").find("consistent"), std::string::npos)
      << offline.dump();
  EXPECT_EQ(offline.value("consistency", ""), "stopped") << offline.dump();
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/plain/state",
                             Json{{"action", "start"}}));
  ASSERT_TRUE(WaitForLog(*c, "plain", "VIREO-GUEST-UP", 120s))
      << ConsoleLog(*c, "plain");
  Json live = CliJson(d, {"backup", "create", "plain"});
  EXPECT_NE(live.value("note", "").find("crash-consistent (no guest agent: "),
            std::string::npos)
      << live.dump();
  EXPECT_EQ(live.value("consistency", ""), "crash") << live.dump();
  // Stored in the manifest: the store's listing says the same.
  auto listed = c->Call("GET", "/1.0/backup-stores/st/backups");
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 2u) << listed->dump();
  EXPECT_EQ((*listed)[0].value("consistency", ""), "stopped") << listed->dump();
  EXPECT_EQ((*listed)[1].value("consistency", ""), "crash") << listed->dump();
  EXPECT_EQ(ConsoleLog(*c, "plain").find("VIREO-QGA-UP"), std::string::npos);
}

}  // namespace
}  // namespace vireo::e2e
