// Managed networks end to end. vireod runs inside a network namespace made
// by the test, so bridges, dnsmasq, nft rules and all traffic stay in it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "common/process.h"
#include "common/random.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

class NetNs {
 public:
  NetNs() : name_("vireo-e2e-" + RandomHex(4)) {
    EXPECT_TRUE(RunCommandOk({"ip", "netns", "add", name_}));
    EXPECT_TRUE(RunCommandOk({"ip", "-n", name_, "link", "set", "lo", "up"}));
  }
  ~NetNs() { (void)RunCommand({"ip", "netns", "del", name_}); }
  const std::string& name() const { return name_; }
  // Runs a command inside the namespace; returns its stdout, or "" with
  // ok=false on a non-zero exit.
  std::string Run(std::vector<std::string> argv, bool* ok = nullptr) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
    auto r = RunCommand(argv, std::chrono::seconds(30));
    if (ok) *ok = r && r->status.success();
    return r ? r->out : "";
  }

 private:
  std::string name_;
};

class Network : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = std::make_unique<NetNs>();
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{}, ns_->name());
    c_ = daemon_->Client();
    ASSERT_TRUE(c_);
  }
  void TearDown() override {
    c_.reset();
    daemon_.reset();  // deletes the instances, stops vireod (and dnsmasq)
    ns_.reset();
  }

  // A guest-kit VM on `network` that asks for a DHCP lease at boot.
  void Launch(const std::string& name, const std::string& network,
              const std::string& ip = "") {
    Json spec = GuestSpec(name, "vireo.dhcp=1");
    Json nic = {{"network", network}};
    if (!ip.empty()) nic["ip"] = ip;
    spec["networks"] = Json::array({nic});
    auto created = c_->CallAndWait("POST", "/1.0/instances", spec);
    ASSERT_TRUE(created) << created.error().ToString();
    auto started = c_->CallAndWait("PUT", "/1.0/instances/" + name + "/state",
                                   Json::object({{"action", "start"}}));
    ASSERT_TRUE(started) << started.error().ToString();
  }
  // Waits for the guest's "VIREO-IP a.b.c.d/n" and returns the address.
  std::string WaitForIp(const std::string& name) {
    if (!WaitForLog(*c_, name, "VIREO-IP ", 150s)) {
      ADD_FAILURE() << name << " got no DHCP lease:\n" << ConsoleLog(*c_, name);
      return "";
    }
    std::smatch m;
    std::string log = ConsoleLog(*c_, name);
    std::regex re("VIREO-IP ([0-9.]+)/");
    if (!std::regex_search(log, m, re)) return "";
    return m[1];
  }
  std::string Guest(const std::string& name, const std::string& cmd) {
    auto out = GuestRun(*c_, name, cmd, 90s);
    EXPECT_TRUE(out) << "no answer from " << name << " to: " << cmd;
    return out.value_or("");
  }
  int Cli(const std::vector<std::string>& args, std::string* out = nullptr,
          std::string* err = nullptr) {
    return daemon_->Cli(args, out, err);
  }

  std::unique_ptr<NetNs> ns_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<ApiClient> c_;
};

TEST_F(Network, TwoGuestsGetLeasesTalkAndAForwardReachesOne) {
  ASSERT_EQ(
      Cli({"network", "create", "lab", "--subnet", "10.77.0.0/24", "--nat"}),
      0);
  std::string links = ns_->Run({"ip", "-br", "addr", "show", "vbr-lab"});
  EXPECT_NE(links.find("10.77.0.1/24"), std::string::npos) << links;
  Launch("a", "lab");
  Launch("b", "lab", "10.77.0.50");  // reserved through the NIC request
  if (HasFatalFailure()) return;
  std::string ip_a = WaitForIp("a");
  std::string ip_b = WaitForIp("b");
  ASSERT_FALSE(ip_a.empty());
  EXPECT_EQ(ip_b, "10.77.0.50");
  ASSERT_NE(ip_a, ip_b);
  EXPECT_EQ(ip_a.rfind("10.77.0.", 0), 0u) << ip_a;

  // vireo list shows the leased addresses.
  std::string list;
  ASSERT_EQ(Cli({"list"}, &list), 0);
  EXPECT_NE(list.find(ip_a), std::string::npos) << list;
  EXPECT_NE(list.find(ip_b), std::string::npos) << list;

  EXPECT_NE(Guest("a", "ping -c 2 -W 3 " + ip_b + " >/dev/null && echo PING-OK")
                .find("PING-OK"),
            std::string::npos);

  // A TCP transfer with a checksum on both ends.
  Guest("b", "nc -l -p 5000 >/tmp/r & echo LISTENING");
  std::string sent =
      Guest("a",
            "dd if=/dev/urandom of=/tmp/f bs=1k count=256 2>/dev/null; "
            "nc " +
                ip_b + " 5000 </tmp/f; md5sum /tmp/f");
  std::string got =
      Guest("b",
            "i=0; while pidof nc >/dev/null && [ $i -lt 100 ]; do usleep "
            "100000; i=$((i+1)); done; wc -c </tmp/r; md5sum /tmp/r");
  std::smatch m;
  std::regex md5("([0-9a-f]{32})");
  ASSERT_TRUE(std::regex_search(sent, m, md5)) << sent;
  std::string sum = m[1];
  EXPECT_NE(got.find(sum), std::string::npos)
      << "sent " << sent << " received " << got;
  EXPECT_NE(got.find("262144"), std::string::npos) << got;

  // Port forward: host port 8080 in the namespace -> b:80.
  Guest("b",
        "mkdir -p /www && echo FORWARDED-PAYLOAD >/www/index.html && "
        "httpd -p 80 -h /www && echo HTTPD");
  ASSERT_EQ(Cli({"network", "forward", "add", "lab", "--host-port", "8080",
                 "--instance", "b", "--port", "80"}),
            0);
  std::string page;
  for (int i = 0; i < 20 && page.find("FORWARDED-PAYLOAD") == std::string::npos;
       ++i) {
    page = ns_->Run({"curl", "-s", "--noproxy", "*", "--max-time", "5",
                     "http://10.77.0.1:8080/index.html"});
    if (page.empty()) std::this_thread::sleep_for(500ms);
  }
  EXPECT_NE(page.find("FORWARDED-PAYLOAD"), std::string::npos)
      << ns_->Run({"nft", "list", "table", "inet", "vireo"}) << "direct: "
      << ns_->Run({"curl", "-s", "--noproxy", "*", "--max-time", "5",
                   "http://10.77.0.50/index.html"});

  // Bad input: refused with a clear message, nothing changes.
  std::string before = ns_->Run({"nft", "list", "ruleset"});
  std::string err;
  EXPECT_NE(Cli({"network", "create", "lab2", "--subnet", "10.77.0.0/16"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("overlaps network 'lab'"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "create", "lab2", "--subnet", "10.78.0.0/33"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("prefix length"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "create", "lab", "--subnet", "10.79.0.0/24"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("already exists"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "create", "lab3", "--subnet", "127.0.0.0/24"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("host route or address"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "delete", "lab"}, nullptr, &err), 0);
  EXPECT_NE(err.find("in use by instance"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "reserve", "lab", "--mac", "52:54:00:11:22:33",
                 "--ip", "10.99.0.5"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("not a usable address"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "reserve", "lab", "--mac", "52:54:00:11:22:33",
                 "--ip", "10.77.0.50"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("reserved for instance 'b'"), std::string::npos) << err;
  EXPECT_NE(Cli({"network", "forward", "add", "lab", "--host-port", "8080",
                 "--instance", "a", "--port", "22"},
                nullptr, &err),
            0);
  EXPECT_NE(err.find("already forwarded"), std::string::npos) << err;
  auto dup = c_->CallAndWait("POST", "/1.0/instances", [] {
    Json s = GuestSpec("c");
    s["networks"] = Json::array({{{"network", "lab"}, {"ip", "10.77.0.50"}}});
    return s;
  }());
  EXPECT_FALSE(dup);
  EXPECT_FALSE(c_->Call("GET", "/1.0/instances/c"));
  std::string names;
  Cli({"network", "list"}, &names);
  EXPECT_EQ(names.find("lab2"), std::string::npos) << names;
  EXPECT_EQ(names.find("lab3"), std::string::npos) << names;
  EXPECT_EQ(ns_->Run({"nft", "list", "ruleset"}), before);

  // Delete removes the bridge, dnsmasq and the nft table.
  for (const char* vm : {"a", "b"})
    ASSERT_TRUE(c_->CallAndWait(
        "DELETE", std::string("/1.0/instances/") + vm + "?force=1"));
  ASSERT_EQ(Cli({"network", "delete", "lab"}, nullptr, &err), 0) << err;
  bool ok = true;
  ns_->Run({"ip", "link", "show", "vbr-lab"}, &ok);
  EXPECT_FALSE(ok) << "bridge still exists";
  EXPECT_EQ(ns_->Run({"nft", "list", "tables"}).find("vireo"),
            std::string::npos);
  auto pgrep = RunCommand({"pgrep", "-f", daemon_->dir() + "/run/networks"});
  EXPECT_TRUE(pgrep && pgrep->out.empty()) << "dnsmasq still running";
}

TEST_F(Network, IsolatedNetworkBlocksGuestToGuest) {
  ASSERT_EQ(Cli({"network", "create", "iso", "--subnet", "10.66.0.0/24",
                 "--isolated"}),
            0);
  Launch("x", "iso");
  Launch("y", "iso");
  if (HasFatalFailure()) return;
  std::string ip_x = WaitForIp("x");
  std::string ip_y = WaitForIp("y");
  ASSERT_FALSE(ip_x.empty());
  ASSERT_FALSE(ip_y.empty());
  // The host (gateway) is reachable, the other guest is not.
  EXPECT_NE(Guest("x", "ping -c 1 -W 3 10.66.0.1 >/dev/null && echo GW-OK")
                .find("GW-OK"),
            std::string::npos);
  std::string blocked =
      Guest("x", "ping -c 2 -W 2 " + ip_y +
                     " >/dev/null && echo REACHED || echo BLOCKED");
  EXPECT_NE(blocked.find("BLOCKED"), std::string::npos) << blocked;
  EXPECT_EQ(blocked.find("REACHED"), std::string::npos) << blocked;
}

}  // namespace
}  // namespace vireo::e2e
