// Boots real guest-kit VMs under a real vireod and checks what the guest did.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>

#include <future>
#include <regex>
#include <thread>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

// Reads events until one with the given action arrives (or the timeout).
std::vector<std::string> CollectActions(std::unique_ptr<WebSocket> ws,
                                        std::string until,
                                        std::chrono::seconds timeout) {
  auto shared = std::make_shared<std::unique_ptr<WebSocket>>(std::move(ws));
  auto actions = std::make_shared<std::vector<std::string>>();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  std::thread([shared, actions, done, until] {
    for (;;) {
      auto msg = (*shared)->Read();
      if (!msg) break;
      auto j = Json::parse(*msg, nullptr, false);
      if (j.is_discarded() || j["type"] != "lifecycle") continue;
      actions->push_back(j["metadata"]["action"].get<std::string>());
      if (actions->back() == until) break;
    }
    done->set_value();
  }).detach();
  if (fut.wait_for(timeout) != std::future_status::ready) return {"<timeout>"};
  return *actions;
}

TEST(Lifecycle, BootSeeMarkerThenAcpiStop) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  auto events = c->OpenWebSocket("/1.0/events");
  ASSERT_TRUE(events) << events.error().ToString();
  auto collected = std::async(std::launch::async, CollectActions,
                              std::move(*events), "instance-stopped", 120s);

  const auto& kit = GuestKit::Get();
  std::string out, err;
  ASSERT_EQ(d.Cli({"create", "vm1", "--cpus", "1", "--memory", "256M",
                   "--kernel", kit.kernel, "--initrd", kit.initrd, "--cmdline",
                   "console=ttyS0 quiet"},
                  &out, &err),
            0)
      << err;
  ASSERT_EQ(d.Cli({"start", "vm1"}, &out, &err), 0) << err;
  ASSERT_TRUE(WaitForLog(*c, "vm1", "VIREO-GUEST-UP", 60s))
      << ConsoleLog(*c, "vm1");
  // The serial console is a real shell: arithmetic only the guest can do.
  auto ran = GuestRun(*c, "vm1", "echo sum=$((40 + 2))");
  ASSERT_TRUE(ran) << ConsoleLog(*c, "vm1");
  EXPECT_NE(ran->find("sum=42"), std::string::npos) << *ran;

  // The CLI's JSON list is what scripts consume.
  ASSERT_EQ(d.Cli({"--json", "list"}, &out, &err), 0) << err;
  Json list = Json::parse(out);
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "vm1");
  EXPECT_EQ(list[0]["state"], "running");
  EXPECT_EQ(list[0]["cpus"], 1);
  EXPECT_EQ(list[0]["memory"], 256 << 20);
  // Least privilege: unprivileged user, seccomp, no TCP listener.
  int pid = list[0]["status"]["pid"];
  ASSERT_TRUE(ProcessAlive(pid));
  if (struct passwd* pw = ::getpwnam("vireo-qemu")) {
    EXPECT_EQ(ProcessUid(pid), static_cast<int>(pw->pw_uid));
  }
  EXPECT_NE(ProcessCmdline(pid).find("-sandbox on"), std::string::npos)
      << ProcessCmdline(pid);
  EXPECT_FALSE(ListensOnTcp(pid));
  std::string host_out;
  ASSERT_EQ(d.Cli({"--json", "host"}, &host_out, &err), 0) << err;
  auto flags = RunCommand({"grep", "-qwE", "vmx|svm", "/proc/cpuinfo"});
  bool hw_virt = flags && flags->status.code == 0;
  EXPECT_EQ(Json::parse(host_out)["resources"]["accelerator"],
            hw_virt ? "kvm" : "tcg")
      << host_out;

  std::string log_out;
  ASSERT_EQ(d.Cli({"console", "vm1", "--log"}, &log_out, &err), 0) << err;
  EXPECT_NE(log_out.find("VIREO-GUEST-UP"), std::string::npos);

  // ACPI stop: the guest itself must see the power button and power off.
  ASSERT_EQ(d.Cli({"stop", "vm1"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "vm1")["status"]["state"], "stopped");
  EXPECT_TRUE(WaitForLog(*c, "vm1", "VIREO-GUEST-POWEROFF", 5s))
      << ConsoleLog(*c, "vm1");

  auto actions = collected.get();
  std::string joined;
  for (auto& a : actions) joined += a + " ";
  EXPECT_NE(joined.find("instance-created"), std::string::npos) << joined;
  EXPECT_NE(joined.find("instance-started"), std::string::npos) << joined;
  EXPECT_NE(joined.find("instance-stopped"), std::string::npos) << joined;

  ASSERT_EQ(d.Cli({"delete", "vm1"}, &out, &err), 0) << err;
  EXPECT_NE(d.Cli({"show", "vm1"}, &out, &err), 0);
}

// Returns the uptime of the last "VIREO-TICK <uptime>" line, or -1.
double LastTick(const std::string& log) {
  std::regex re("VIREO-TICK ([0-9]+\\.?[0-9]*)");
  double last = -1;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re);
       it != std::sregex_iterator(); ++it)
    last = std::stod((*it)[1]);
  return last;
}

TEST(Lifecycle, PauseStopsTheGuestClockAndResumeContinuesIt) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances",
                             GuestSpec("ticker", "vireo.tick=1")));
  ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/ticker/state",
                             Json{{"action", "start"}}));
  ASSERT_TRUE(WaitForLog(*c, "ticker", "VIREO-TICK", 60s, 3))
      << ConsoleLog(*c, "ticker");

  std::string out, err;
  ASSERT_EQ(d.Cli({"pause", "ticker"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "ticker")["status"]["state"], "paused");
  std::string log_at_pause = ConsoleLog(*c, "ticker");
  double tick_at_pause = LastTick(log_at_pause);
  auto wall_start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(4s);
  // Nothing ran while paused.
  EXPECT_EQ(ConsoleLog(*c, "ticker").size(), log_at_pause.size());

  ASSERT_EQ(d.Cli({"resume", "ticker"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "ticker")["status"]["state"], "running");
  int ticks_before = CountOccurrences(log_at_pause, "VIREO-TICK");
  ASSERT_TRUE(WaitForLog(*c, "ticker", "VIREO-TICK", 30s, ticks_before + 2));
  double tick_after = LastTick(ConsoleLog(*c, "ticker"));
  double wall_s = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - wall_start)
                      .count();
  // The guest's clock advanced clearly less than wall time: the paused
  // seconds are missing from it.
  EXPECT_GT(tick_after, tick_at_pause);
  EXPECT_LT(tick_after - tick_at_pause, wall_s - 2.5)
      << "guest uptime " << tick_at_pause << " -> " << tick_after << " over "
      << wall_s << " s";
}

TEST(Lifecycle, KilledQemuGoesToErrorAndRestartPolicyApplies) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  Json never = GuestSpec("crash-never");
  Json again = GuestSpec("crash-again");
  again["restart_policy"] = "on-failure";
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", never));
  ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", again));
  for (std::string n : {"crash-never", "crash-again"}) {
    ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/" + n + "/state",
                               Json{{"action", "start"}}));
    ASSERT_TRUE(WaitForLog(*c, n, "VIREO-GUEST-UP", 60s)) << ConsoleLog(*c, n);
  }
  int pid_never = GetInstance(*c, "crash-never")["status"]["pid"];
  int pid_again = GetInstance(*c, "crash-again")["status"]["pid"];
  ASSERT_GT(pid_never, 0);
  ASSERT_GT(pid_again, 0);
  ASSERT_EQ(::kill(pid_never, SIGKILL), 0);
  ASSERT_EQ(::kill(pid_again, SIGKILL), 0);

  // Detected within a second (plus polling slack), with the reason.
  ASSERT_TRUE(WaitForState(*c, "crash-never", "error", 3s));
  Json j = GetInstance(*c, "crash-never");
  EXPECT_NE(j["status"]["last_error"].get<std::string>().find("signal 9"),
            std::string::npos)
      << j.dump();
  EXPECT_EQ(j["status"]["restart_count"], 0);

  // on-failure: it comes back by itself, as a new process, and boots again.
  ASSERT_TRUE(WaitForLog(*c, "crash-again", "VIREO-GUEST-UP", 60s, 2))
      << ConsoleLog(*c, "crash-again");
  Json a = GetInstance(*c, "crash-again");
  EXPECT_EQ(a["status"]["state"], "running");
  EXPECT_EQ(a["status"]["restart_count"], 1);
  EXPECT_NE(a["status"]["pid"], pid_again);
  EXPECT_TRUE(ProcessAlive(a["status"]["pid"].get<int>()));

  // A user can restart an instance out of the error state.
  std::string out, err;
  ASSERT_EQ(d.Cli({"restart", "crash-never"}, &out, &err), 0) << err;
  EXPECT_TRUE(WaitForLog(*c, "crash-never", "VIREO-GUEST-UP", 60s, 2));
  Json r = GetInstance(*c, "crash-never");
  EXPECT_EQ(r["status"]["state"], "running");
  EXPECT_EQ(r["status"]["last_error"], "");
}

TEST(Lifecycle, DaemonRestartKeepsVmsRunningAndControllable) {
  Daemon d;
  auto c = d.Client();
  ASSERT_TRUE(c);
  for (std::string n : {"keep1", "keep2", "dies"}) {
    ASSERT_TRUE(c->CallAndWait("POST", "/1.0/instances", GuestSpec(n)));
    ASSERT_TRUE(c->CallAndWait("PUT", "/1.0/instances/" + n + "/state",
                               Json{{"action", "start"}}));
  }
  for (std::string n : {"keep1", "keep2", "dies"})
    ASSERT_TRUE(WaitForLog(*c, n, "VIREO-GUEST-UP", 90s)) << ConsoleLog(*c, n);
  int pid1 = GetInstance(*c, "keep1")["status"]["pid"];
  int pid2 = GetInstance(*c, "keep2")["status"]["pid"];
  int pid3 = GetInstance(*c, "dies")["status"]["pid"];
  c.reset();

  // Hard kill: no chance for vireod to clean anything up.
  d.Stop(/*hard=*/true);
  EXPECT_TRUE(ProcessAlive(pid1));
  EXPECT_TRUE(ProcessAlive(pid2));
  ::kill(pid3, SIGKILL);  // this one dies while vireod is away
  std::this_thread::sleep_for(300ms);
  d.Start();
  c = d.Client();
  ASSERT_TRUE(c);

  Json k1 = GetInstance(*c, "keep1");
  Json k2 = GetInstance(*c, "keep2");
  EXPECT_EQ(k1["status"]["state"], "running") << k1.dump();
  EXPECT_EQ(k2["status"]["state"], "running") << k2.dump();
  EXPECT_EQ(k1["status"]["pid"], pid1);
  EXPECT_EQ(GetInstance(*c, "dies")["status"]["state"], "stopped");

  // A clean restart (SIGTERM) must not stop VMs either.
  c.reset();
  d.Stop(/*hard=*/false);
  EXPECT_TRUE(ProcessAlive(pid1));
  EXPECT_TRUE(ProcessAlive(pid2));
  d.Start();
  c = d.Client();
  ASSERT_TRUE(c);
  EXPECT_EQ(GetInstance(*c, "keep1")["status"]["state"], "running");
  EXPECT_EQ(GetInstance(*c, "keep2")["status"]["pid"], pid2);

  // Still controllable: pause/resume one, ACPI-stop the other.
  std::string out, err;
  ASSERT_EQ(d.Cli({"pause", "keep1"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "keep1")["status"]["state"], "paused");
  ASSERT_EQ(d.Cli({"resume", "keep1"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "keep1")["status"]["state"], "running");
  ASSERT_EQ(d.Cli({"stop", "keep2"}, &out, &err), 0) << err;
  EXPECT_EQ(GetInstance(*c, "keep2")["status"]["state"], "stopped");
  EXPECT_TRUE(WaitForLog(*c, "keep2", "VIREO-GUEST-POWEROFF", 5s));
  EXPECT_FALSE(ProcessAlive(pid2));
  // And an adopted VM that crashes is still noticed.
  ::kill(pid1, SIGKILL);
  EXPECT_TRUE(WaitForState(*c, "keep1", "error", 3s));
}

}  // namespace
}  // namespace vireo::e2e
