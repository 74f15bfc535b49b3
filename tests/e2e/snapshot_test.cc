// Snapshots with real guests under TCG: data on a qcow2 data disk survives
// snapshot/overwrite/restore (checksums), memory snapshots resume a running
// counter where it was, the tree survives deletes, stopped-VM snapshots,
// copies from a snapshot, refusals, and the scheduler.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <thread>

#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

constexpr auto kOpTimeout = std::chrono::seconds(600);

std::string InGuest(ApiClient& c, const std::string& vm,
                    const std::string& cmd) {
  auto out = GuestRun(c, vm, cmd, 120s);
  EXPECT_TRUE(out) << vm << ": no answer to: " << cmd << "\n"
                   << ConsoleLog(c, vm);
  std::string s = out.value_or("");
  s.erase(std::remove(s.begin(), s.end(), '\r'), s.end());
  return s;
}

std::string Md5(const std::string& text) {
  std::smatch m;
  static const std::regex re("([0-9a-f]{32})");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// Waits for the shell of the VM's next boot. The console log keeps earlier
// boots, so each call waits for one more banner than the last: typing into
// a guest that is still booting loses characters.
bool WaitShell(ApiClient& c, const std::string& vm) {
  static std::map<std::string, int> boots;  // by instance id
  int n = ++boots[GetInstance(c, vm)["id"].get<std::string>()];
  bool up = WaitForLog(c, vm, "VIREO-GUEST-UP", 180s, n) &&
            WaitForLog(c, vm, "built-in shell", 60s, n);
  EXPECT_TRUE(up) << ConsoleLog(c, vm);
  return up;
}

// Fills the first MiB of the data disk with random bytes; returns its md5.
std::string WriteRandom(ApiClient& c, const std::string& vm) {
  std::string out = InGuest(
      c, vm,
      "dd if=/dev/urandom of=/dev/vda bs=64k count=16 conv=fsync 2>/dev/null;"
      " sync; dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum");
  std::string h = Md5(out);
  EXPECT_FALSE(h.empty()) << out;
  return h;
}

std::string ReadHash(ApiClient& c, const std::string& vm) {
  std::string out =
      InGuest(c, vm, "dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum");
  return Md5(out);
}

Json DiskVm(const std::string& name, const std::string& extra = "") {
  Json spec = GuestSpec(name, extra);
  spec["disks"] = Json::array({{{"size", "16M"}}});
  return spec;
}

void CreateAndStart(ApiClient& c, const Json& spec) {
  std::string name = spec["name"];
  auto created = c.CallAndWait("POST", "/1.0/instances", spec);
  ASSERT_TRUE(created) << created.error().ToString();
  auto started = c.CallAndWait("PUT", "/1.0/instances/" + name + "/state",
                               Json{{"action", "start"}});
  ASSERT_TRUE(started) << started.error().ToString();
}

Status State(ApiClient& c, const std::string& vm, const std::string& action) {
  auto r = c.CallAndWait("PUT", "/1.0/instances/" + vm + "/state",
                         Json{{"action", action}, {"force", true}}, kOpTimeout);
  if (!r) return tl::unexpected(r.error());
  return Ok();
}

Result<Json> Snap(ApiClient& c, const std::string& vm, const std::string& snap,
                  bool memory = false) {
  return c.CallAndWait("POST", "/1.0/instances/" + vm + "/snapshots",
                       Json{{"name", snap}, {"memory", memory}}, kOpTimeout);
}

Result<Json> Restore(ApiClient& c, const std::string& vm,
                     const std::string& snap, bool confirm = true) {
  return c.CallAndWait(
      "POST", "/1.0/instances/" + vm + "/snapshots/" + snap + "/restore",
      Json{{"confirm", confirm}}, kOpTimeout);
}

// name -> parent
std::map<std::string, std::string> Tree(ApiClient& c, const std::string& vm,
                                        std::string* current = nullptr) {
  std::map<std::string, std::string> out;
  auto list = c.Call("GET", "/1.0/instances/" + vm + "/snapshots?recursion=1");
  EXPECT_TRUE(list) << list.error().ToString();
  if (!list) return out;
  for (const Json& s : *list) {
    out[s["name"]] = s["parent"];
    if (current && s["current"] == true) *current = s["name"];
  }
  return out;
}

TEST(Snapshots, DiskDataTreeStoppedCopyAndRefusals) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  CreateAndStart(*c, DiskVm("snap1"));
  ASSERT_TRUE(WaitShell(*c, "snap1"));

  std::string h1 = WriteRandom(*c, "snap1");
  auto s1 = Snap(*c, "snap1", "s1");
  ASSERT_TRUE(s1) << s1.error().ToString();
  EXPECT_EQ((*s1)["parent"], "");
  std::string h2 = WriteRandom(*c, "snap1");
  ASSERT_NE(h1, h2);
  ASSERT_TRUE(Snap(*c, "snap1", "s2"));

  // Refusals change nothing.
  auto dup = Snap(*c, "snap1", "s2");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  auto unknown = c->Call("GET", "/1.0/instances/snap1/snapshots/nosuch");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
  auto unknown_restore = Restore(*c, "snap1", "nosuch");
  ASSERT_FALSE(unknown_restore);
  EXPECT_EQ(unknown_restore.error().code(), ErrorCode::kNotFound);
  auto bad_name = Snap(*c, "snap1", "a/b");
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().code(), ErrorCode::kInvalidArgument);
  auto unconfirmed = Restore(*c, "snap1", "s1", false);
  ASSERT_FALSE(unconfirmed);
  EXPECT_EQ(unconfirmed.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(unconfirmed.error().message().find("discards"), std::string::npos)
      << unconfirmed.error().message();
  std::string out, err;
  EXPECT_NE(d.Cli({"snapshot", "restore", "snap1", "s1"}, &out, &err), 0);
  EXPECT_EQ(GetInstance(*c, "snap1")["status"]["state"], "running");
  EXPECT_EQ(ReadHash(*c, "snap1"), h2);

  // Restore s1 on the running VM: stopped, restored, started again.
  ASSERT_EQ(d.Cli({"snapshot", "restore", "snap1", "s1", "--yes"}, &out, &err),
            0)
      << err;
  EXPECT_EQ(GetInstance(*c, "snap1")["status"]["state"], "running");
  ASSERT_TRUE(WaitShell(*c, "snap1"));
  EXPECT_EQ(ReadHash(*c, "snap1"), h1);
  std::string h3 = WriteRandom(*c, "snap1");
  ASSERT_EQ(d.Cli({"snapshot", "create", "snap1", "s3"}, &out, &err), 0) << err;
  std::string current;
  auto tree = Tree(*c, "snap1", &current);
  EXPECT_EQ(tree, (std::map<std::string, std::string>{
                      {"s1", ""}, {"s2", "s1"}, {"s3", "s1"}}));
  EXPECT_EQ(current, "s3");
  ASSERT_EQ(d.Cli({"snapshot", "list", "snap1"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("- s1"), std::string::npos) << out;
  EXPECT_NE(out.find("  * s3"), std::string::npos) << out;

  // Deleting the root keeps its children, re-parented.
  ASSERT_EQ(d.Cli({"snapshot", "delete", "snap1", "s1"}, &out, &err), 0) << err;
  tree = Tree(*c, "snap1");
  EXPECT_EQ(tree, (std::map<std::string, std::string>{{"s2", ""}, {"s3", ""}}));
  ASSERT_TRUE(Restore(*c, "snap1", "s2"));
  ASSERT_TRUE(WaitShell(*c, "snap1"));
  EXPECT_EQ(ReadHash(*c, "snap1"), h2);
  ASSERT_TRUE(Restore(*c, "snap1", "s3"));
  ASSERT_TRUE(WaitShell(*c, "snap1"));
  EXPECT_EQ(ReadHash(*c, "snap1"), h3);

  // Stopped VM: qemu-img snapshots; a memory snapshot is refused.
  ASSERT_TRUE(State(*c, "snap1", "stop"));
  auto mem = Snap(*c, "snap1", "m-off", true);
  ASSERT_FALSE(mem);
  EXPECT_EQ(mem.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(mem.error().message().find("running"), std::string::npos);
  ASSERT_TRUE(Snap(*c, "snap1", "off1"));
  ASSERT_TRUE(Restore(*c, "snap1", "s2"));
  EXPECT_EQ(GetInstance(*c, "snap1")["status"]["state"], "stopped");
  ASSERT_TRUE(State(*c, "snap1", "start"));
  ASSERT_TRUE(WaitShell(*c, "snap1"));
  EXPECT_EQ(ReadHash(*c, "snap1"), h2);
  ASSERT_TRUE(State(*c, "snap1", "stop"));
  ASSERT_TRUE(Restore(*c, "snap1", "off1"));
  ASSERT_TRUE(State(*c, "snap1", "start"));
  ASSERT_TRUE(WaitShell(*c, "snap1"));
  EXPECT_EQ(ReadHash(*c, "snap1"), h3);

  // A copy of s2 (source running) boots with s2's data.
  ASSERT_EQ(d.Cli({"copy", "snap1/s2", "clone"}, &out, &err), 0) << err;
  Json clone = GetInstance(*c, "clone");
  Json orig = GetInstance(*c, "snap1");
  EXPECT_NE(clone["id"], orig["id"]);
  EXPECT_NE(clone["config"]["nics"][0]["mac"],
            orig["config"]["nics"][0]["mac"]);
  EXPECT_NE(clone["config"]["disks"][0]["path"],
            orig["config"]["disks"][0]["path"]);
  ASSERT_TRUE(State(*c, "clone", "start"));
  ASSERT_TRUE(WaitShell(*c, "clone"));
  EXPECT_EQ(ReadHash(*c, "clone"), h2);
  // The source is untouched.
  EXPECT_EQ(ReadHash(*c, "snap1"), h3);
  auto taken = c->CallAndWait("POST", "/1.0/instances/snap1/copy",
                              Json{{"name", "clone"}});
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code(), ErrorCode::kAlreadyExists);

  // Deleting the VM removes its snapshot records.
  ASSERT_TRUE(c->CallAndWait("DELETE", "/1.0/instances/snap1?force=true"));
  CreateAndStart(*c, DiskVm("snap1"));
  EXPECT_TRUE(Tree(*c, "snap1").empty());
}

// Last "VCNT <n>" in text, or -1.
long LastCount(const std::string& text) {
  static const std::regex re("VCNT ([0-9]+)");
  long last = -1;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
       it != std::sregex_iterator(); ++it)
    last = std::stol((*it)[1]);
  return last;
}

long FirstCount(const std::string& text) {
  static const std::regex re("VCNT ([0-9]+)");
  std::smatch m;
  return std::regex_search(text, m, re) ? std::stol(m[1]) : -1;
}

bool WaitCount(ApiClient& c, const std::string& vm, long at_least) {
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (LastCount(ConsoleLog(c, vm)) >= at_least) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

TEST(Snapshots, MemorySnapshotResumesTheCounter) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  CreateAndStart(*c, DiskVm("counter"));
  ASSERT_TRUE(WaitShell(*c, "counter"));
  // A background loop printing an increasing number every ~0.2 s.
  InGuest(*c, "counter",
          "(i=0; while true; do echo VCNT $i; i=$((i+1)); usleep 200000; "
          "done) & true");
  ASSERT_TRUE(WaitCount(*c, "counter", 10)) << ConsoleLog(*c, "counter");

  long before = LastCount(ConsoleLog(*c, "counter"));
  auto snap = Snap(*c, "counter", "m1", true);
  ASSERT_TRUE(snap) << snap.error().ToString();
  EXPECT_EQ((*snap)["memory"], true);
  EXPECT_GT((*snap)["vm_state_size"].get<uint64_t>(), 0u);
  long after = LastCount(ConsoleLog(*c, "counter"));
  EXPECT_EQ(GetInstance(*c, "counter")["status"]["state"], "running");

  // Let it run well past the snapshot, then go back.
  ASSERT_TRUE(WaitCount(*c, "counter", after + 25));
  std::string log = ConsoleLog(*c, "counter");
  long pre_restore = LastCount(log);
  size_t mark = log.size();
  auto restored = Restore(*c, "counter", "m1");
  ASSERT_TRUE(restored) << restored.error().ToString();
  EXPECT_EQ(GetInstance(*c, "counter")["status"]["state"], "running");
  auto deadline = std::chrono::steady_clock::now() + 60s;
  long first = -1;
  while (first < 0 && std::chrono::steady_clock::now() < deadline) {
    std::string now = ConsoleLog(*c, "counter");
    if (now.size() > mark) first = FirstCount(now.substr(mark));
    std::this_thread::sleep_for(200ms);
  }
  // Continues from the snapshot's value: not from 0, not from before the
  // restore.
  EXPECT_GE(first, before) << "snapshot taken between " << before << " and "
                           << after << "; pre-restore " << pre_restore;
  EXPECT_LE(first, after + 2) << "pre-restore " << pre_restore;
  EXPECT_LT(first, pre_restore - 10);
  // And it keeps counting.
  EXPECT_TRUE(WaitCount(*c, "counter", first + 5));

  // From a stopped VM: it is started and the memory loaded into it, so the
  // counter again continues from the snapshot (no fresh boot, no shell).
  ASSERT_TRUE(State(*c, "counter", "stop"));
  size_t mark2 = ConsoleLog(*c, "counter").size();
  auto cold = Restore(*c, "counter", "m1");
  ASSERT_TRUE(cold) << cold.error().ToString();
  EXPECT_EQ(GetInstance(*c, "counter")["status"]["state"], "running");
  deadline = std::chrono::steady_clock::now() + 60s;
  long again = -1;
  while (again < 0 && std::chrono::steady_clock::now() < deadline) {
    std::string now = ConsoleLog(*c, "counter");
    if (now.size() > mark2) again = FirstCount(now.substr(mark2));
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(again, before);
  EXPECT_LE(again, after + 2);
}

TEST(Snapshots, OptionsAndScheduler) {
  Daemon d({"--snapshot-scheduler-period-ms", "300"});
  auto c = d.Client();
  ASSERT_TRUE(c);
  auto created = c->CallAndWait("POST", "/1.0/instances", DiskVm("sched"));
  ASSERT_TRUE(created) << created.error().ToString();

  // Options: bad key and bad value are 400 and change nothing.
  auto bad = c->Call("PATCH", "/1.0/instances/sched",
                     Json{{"options", {{"snapshot.schedule", "@daily"}}}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("snapshots.schedule"),
            std::string::npos);
  std::string out, err;
  EXPECT_NE(
      d.Cli({"config", "set", "sched", "snapshots.expiry=soon"}, &out, &err),
      0);
  EXPECT_TRUE(GetInstance(*c, "sched")["options"].empty());
  ASSERT_EQ(d.Cli({"config", "set", "sched", "backups.keep-last=3",
                   "snapshots.schedule=every 2s", "snapshots.expiry=7s"},
                  &out, &err),
            0)
      << err;
  ASSERT_EQ(
      d.Cli({"config", "unset", "sched", "backups.keep-last"}, &out, &err), 0)
      << err;
  ASSERT_EQ(d.Cli({"config", "show", "sched"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("snapshots.schedule=every 2s"), std::string::npos) << out;
  EXPECT_EQ(out.find("keep-last"), std::string::npos) << out;
  EXPECT_EQ(GetInstance(*c, "sched")["config"]["options"]["snapshots.expiry"],
            "7s");

  // The scheduler takes auto-* snapshots of the (stopped) VM ...
  std::set<std::string> seen;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (seen.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& [name, parent] : Tree(*c, "sched")) seen.insert(name);
    std::this_thread::sleep_for(300ms);
  }
  ASSERT_GE(seen.size(), 3u);
  for (const auto& n : seen) EXPECT_EQ(n.rfind("auto-", 0), 0u) << n;
  // ... and expires the old ones: the first is gone, a manual one stays.
  ASSERT_TRUE(Snap(*c, "sched", "manual"));
  std::string first = *seen.begin();
  deadline = std::chrono::steady_clock::now() + 60s;
  bool expired = false;
  while (!expired && std::chrono::steady_clock::now() < deadline) {
    expired = !Tree(*c, "sched").count(first);
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_TRUE(expired) << first;
  // Stop scheduling; the manual snapshot outlives the expiry.
  ASSERT_EQ(d.Cli({"config", "unset", "sched", "snapshots.schedule",
                   "snapshots.expiry"},
                  &out, &err),
            0)
      << err;
  std::this_thread::sleep_for(8s);
  EXPECT_TRUE(Tree(*c, "sched").count("manual"));
}

}  // namespace
}  // namespace vireo::e2e
