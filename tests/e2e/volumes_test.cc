// Storage pools and volumes with real guests: hot-plug a volume into a
// running VM, write to it, move it to another running VM, read the bytes
// back; grow it online; refusals change nothing.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPool = "/1.0/storage-pools/fast";
constexpr const char* kVol = "/1.0/storage-pools/fast/volumes/shared";
constexpr uint64_t kMiB = 1ull << 20;

// Runs a guest command and returns its output with CRs and blank edges gone.
std::string InGuest(ApiClient& c, const std::string& vm,
                    const std::string& cmd) {
  auto out = GuestRun(c, vm, cmd, 90s);
  EXPECT_TRUE(out) << vm << ": no answer to: " << cmd << "\n"
                   << ConsoleLog(c, vm);
  std::string s = out.value_or("");
  s.erase(std::remove(s.begin(), s.end(), '\r'), s.end());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && s.front() == '\n') s.erase(s.begin());
  return s;
}

// The guest waits (up to ~20 s) for /dev/vda to appear or vanish.
std::string WaitDisk(bool present) {
  return std::string("i=0; while ") +
         (present ? "[ ! -b /dev/vda ]" : "[ -b /dev/vda ]") +
         " && [ $i -lt 200 ]; do usleep 100000; i=$((i+1)); done; "
         "[ -b /dev/vda ] && echo disk-present || echo disk-absent";
}

std::string Md5(const std::string& text) {
  std::smatch m;
  static const std::regex re("([0-9a-f]{32})");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// Typing before the guest's shell reads its console garbles the echo (its
// init is still printing, e.g. the disk check), so wait for the shell's banner.
bool WaitShell(ApiClient& c, const std::string& vm) {
  bool up = WaitForLog(c, vm, "VIREO-GUEST-UP", 120s) &&
            WaitForLog(c, vm, "built-in shell", 60s);
  EXPECT_TRUE(up) << ConsoleLog(c, vm);
  return up;
}

Json Pool(ApiClient& c) {
  auto p = c.Call("GET", kPool);
  EXPECT_TRUE(p) << p.error().ToString();
  return p.value_or(Json::object());
}

TEST(Volumes, HotplugMoveBetweenRunningVmsAndGrowOnline) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);

  // A second dir pool; its usage follows the volume.
  auto pool = c->Call("POST", "/1.0/storage-pools",
                      Json{{"name", "fast"},
                           {"type", "dir"},
                           {"path", d.dir() + "/fastpool"},
                           {"quota", "1G"}});
  ASSERT_TRUE(pool) << pool.error().ToString();
  EXPECT_EQ(Pool(*c)["volumes"], 0);
  auto vol = c->Call("POST", std::string(kPool) + "/volumes",
                     Json{{"name", "shared"}, {"size", "64M"}});
  ASSERT_TRUE(vol) << vol.error().ToString();
  EXPECT_EQ(Pool(*c)["volumes"], 1);
  EXPECT_EQ(Pool(*c)["allocated_bytes"], 64 * kMiB);
  // Past the quota: refused, nothing created.
  auto over = c->Call("POST", std::string(kPool) + "/volumes",
                      Json{{"name", "huge"}, {"size", "2G"}});
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(Pool(*c)["volumes"], 1);

  for (const char* vm : {"va", "vb"}) {
    auto created = c->CallAndWait("POST", "/1.0/instances", GuestSpec(vm));
    ASSERT_TRUE(created) << created.error().ToString();
    auto started =
        c->CallAndWait("PUT", std::string("/1.0/instances/") + vm + "/state",
                       Json{{"action", "start"}});
    ASSERT_TRUE(started) << started.error().ToString();
  }
  for (const char* vm : {"va", "vb"}) ASSERT_TRUE(WaitShell(*c, vm));

  // Hot-plug into A, write known bytes plus 1 MiB of random data.
  auto attached = c->CallAndWait("POST", std::string(kVol) + "/attach",
                                 Json{{"instance", "va"}});
  ASSERT_TRUE(attached) << attached.error().ToString();
  EXPECT_EQ((*attached)["hotplug"], true);
  ASSERT_EQ(InGuest(*c, "va", WaitDisk(true)), "disk-present");
  std::string written = InGuest(
      *c, "va",
      "echo vireo-bytes-123 | dd of=/dev/vda conv=fsync 2>/dev/null; "
      "dd if=/dev/urandom of=/dev/vda bs=64k seek=1 count=16 conv=fsync "
      "2>/dev/null; dd if=/dev/vda bs=64k count=17 2>/dev/null | md5sum; "
      "dd if=/dev/vda bs=16 count=1 2>/dev/null | md5sum");
  std::string hash_a = Md5(written);
  ASSERT_FALSE(hash_a.empty()) << written;
  // md5 of "vireo-bytes-123\n", computed on the host.
  EXPECT_NE(written.find("7efd48be82aceb681573e6894355f7bc"), std::string::npos)
      << written;

  // Refusals: a second running VM, deleting in use, shrinking.
  auto twice =
      c->Call("POST", std::string(kVol) + "/attach", Json{{"instance", "vb"}});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(twice.error().message().find("attached to 'va'"), std::string::npos)
      << twice.error().message();
  auto again =
      c->Call("POST", std::string(kVol) + "/attach", Json{{"instance", "va"}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  auto del = c->Call("DELETE", kVol);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), ErrorCode::kFailedPrecondition);
  auto shrink =
      c->Call("POST", std::string(kVol) + "/resize", Json{{"size", "32M"}});
  ASSERT_FALSE(shrink);
  EXPECT_EQ(shrink.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(GetInstance(*c, "vb")["config"]["disks"].size(), 0u);

  // Online grow: the guest sees the new size.
  auto grown = c->CallAndWait("POST", std::string(kVol) + "/resize",
                              Json{{"size", "96M"}});
  ASSERT_TRUE(grown) << grown.error().ToString();
  EXPECT_EQ((*grown)["online"], true);
  EXPECT_EQ(InGuest(*c, "va",
                    "i=0; while [ $(cat /sys/block/vda/size) != 196608 ] && "
                    "[ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done; "
                    "cat /sys/block/vda/size"),
            "196608");
  EXPECT_EQ(Pool(*c)["allocated_bytes"], 96 * kMiB);

  // Hot-unplug from A (the guest lets go), hot-plug into B, same bytes.
  auto detached = c->CallAndWait("POST", std::string(kVol) + "/detach",
                                 Json{{"instance", "va"}});
  ASSERT_TRUE(detached) << detached.error().ToString();
  EXPECT_EQ(InGuest(*c, "va", WaitDisk(false)), "disk-absent");
  EXPECT_EQ(GetInstance(*c, "va")["config"]["disks"].size(), 0u);
  attached = c->CallAndWait("POST", std::string(kVol) + "/attach",
                            Json{{"instance", "vb"}});
  ASSERT_TRUE(attached) << attached.error().ToString();
  ASSERT_EQ(InGuest(*c, "vb", WaitDisk(true)), "disk-present");
  std::string read_b = InGuest(*c, "vb",
                               "dd if=/dev/vda bs=64k count=17 2>/dev/null | "
                               "md5sum; cat /sys/block/vda/size");
  EXPECT_EQ(Md5(read_b), hash_a) << read_b;
  EXPECT_NE(read_b.find("196608"), std::string::npos) << read_b;

  std::string out, err;
  ASSERT_EQ(d.Cli({"volume", "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("vb"), std::string::npos) << out;
  ASSERT_EQ(d.Cli({"storage", "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("fast"), std::string::npos) << out;
  // A pool with a volume cannot be deleted.
  EXPECT_NE(d.Cli({"storage", "delete", "fast"}, &out, &err), 0);
  EXPECT_NE(err.find("still holds"), std::string::npos) << err;
}

// Attached while stopped: the volume boots with the VM (behind its own root
// port), and can still be unplugged while it runs. A root disk can be made in
// a named pool; an unknown pool is refused.
TEST(Volumes, ColdAttachBootsWithVmThenHotUnplug) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Call("POST", "/1.0/storage-pools",
                      Json{{"name", "fast"}, {"path", d.dir() + "/fastpool"}}));
  ASSERT_TRUE(c->Call("POST", std::string(kPool) + "/volumes",
                      Json{{"name", "shared"}, {"size", "32M"}}));

  Json bad = GuestSpec("vx");
  bad["disks"] = Json::array({{{"size", "16M"}, {"pool", "nosuch"}}});
  auto refused = c->Call("POST", "/1.0/instances", bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);

  Json spec = GuestSpec("vc");
  spec["disks"] = Json::array({{{"size", "16M"}, {"pool", "fast"}}});
  auto created = c->CallAndWait("POST", "/1.0/instances", spec);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(Pool(*c)["volumes"], 2);  // the root disk and the volume

  auto attached = c->CallAndWait("POST", std::string(kVol) + "/attach",
                                 Json{{"instance", "vc"}});
  ASSERT_TRUE(attached) << attached.error().ToString();
  EXPECT_EQ((*attached)["hotplug"], false);
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/vc/state",
                             Json{{"action", "start"}}));
  ASSERT_TRUE(WaitShell(*c, "vc"));
  // 16 MiB root disk is vda, the 32 MiB volume vdb.
  EXPECT_EQ(InGuest(*c, "vc",
                    "i=0; while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do "
                    "usleep 100000; i=$((i+1)); done; cat /sys/block/vdb/size"),
            "65536");
  auto detached = c->CallAndWait("POST", std::string(kVol) + "/detach",
                                 Json{{"instance", "vc"}});
  ASSERT_TRUE(detached) << detached.error().ToString();
  EXPECT_EQ((*detached)["hotplug"], true);
  EXPECT_EQ(InGuest(*c, "vc",
                    "i=0; while [ -b /dev/vdb ] && [ $i -lt 100 ]; do "
                    "usleep 100000; i=$((i+1)); done; ls /dev | grep -c vd"),
            "1");
  // Free again: it can be deleted; deleting the VM frees its pool disk.
  ASSERT_TRUE(c->Call("DELETE", kVol));
  ASSERT_TRUE(c->CallAndWait("DELETE", "/1.0/instances/vc?force=1"));
  EXPECT_EQ(Pool(*c)["volumes"], 0);
  EXPECT_TRUE(c->Call("DELETE", kPool));
}

}  // namespace
}  // namespace vireo::e2e
