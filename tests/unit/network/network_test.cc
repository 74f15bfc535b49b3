#include <gtest/gtest.h>

#include <algorithm>

#include "network/cidr.h"
#include "network/dnsmasq.h"
#include "network/network_config.h"
#include "network/nft_ruleset.h"

namespace vireo {
namespace {

TEST(Cidr, ParsesAndFormats) {
  auto n = ParseCidr("10.87.0.0/24");
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_EQ(n->ToString(), "10.87.0.0/24");
  EXPECT_EQ(FormatIpv4(n->Gateway()), "10.87.0.1");
  EXPECT_EQ(FormatIpv4(n->Broadcast()), "10.87.0.255");
  EXPECT_TRUE(n->IsGuestAddress(*ParseIpv4("10.87.0.2")));
  EXPECT_FALSE(n->IsGuestAddress(*ParseIpv4("10.87.0.1")));
  EXPECT_FALSE(n->IsGuestAddress(*ParseIpv4("10.87.0.255")));
  EXPECT_FALSE(n->IsGuestAddress(*ParseIpv4("10.87.1.2")));
}

TEST(Cidr, RejectsBadInput) {
  for (const char* bad : {"", "10.0.0.0", "10.0.0/24", "10.0.0.256/24",
                          "10.0.0.0/33", "10.0.0.0/", "a.b.c.d/8",
                          "10.0.0.0/24x", "10..0.0/24", "1.2.3.4.5/8"}) {
    auto r = ParseCidr(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto host_bits = ParseCidr("10.0.0.5/24");
  ASSERT_FALSE(host_bits);
  EXPECT_NE(host_bits.error().message().find("10.0.0.0/24"), std::string::npos);
  EXPECT_TRUE(ParseCidr("10.0.0.5/24", /*strict=*/false));
}

TEST(Cidr, Overlaps) {
  auto a = *ParseCidr("10.0.0.0/16");
  EXPECT_TRUE(a.Overlaps(*ParseCidr("10.0.5.0/24")));
  EXPECT_TRUE(ParseCidr("10.0.5.0/24")->Overlaps(a));
  EXPECT_FALSE(a.Overlaps(*ParseCidr("10.1.0.0/24")));
  EXPECT_TRUE(ParseCidr("0.0.0.0/0")->Overlaps(a));
  EXPECT_FALSE(
      ParseCidr("192.168.1.0/24")->Overlaps(*ParseCidr("192.168.2.0/24")));
}

TEST(Cidr, Mac) {
  EXPECT_EQ(*NormalizeMac("52:54:00:AB:cd:0F"), "52:54:00:ab:cd:0f");
  EXPECT_FALSE(NormalizeMac("52:54:00:ab:cd"));
  EXPECT_FALSE(NormalizeMac("52-54-00-ab-cd-ef"));
  EXPECT_FALSE(NormalizeMac("01:00:5e:00:00:01"));  // multicast
  EXPECT_FALSE(NormalizeMac("52:54:00:ab:cd:gg"));
}

TEST(NetworkConfig, NamesAndRoundTrip) {
  EXPECT_TRUE(ValidateNetworkName("vireo0"));
  EXPECT_FALSE(ValidateNetworkName("0net"));
  EXPECT_FALSE(ValidateNetworkName("twelve-chars"));
  EXPECT_FALSE(ValidateNetworkName("Net"));
  EXPECT_FALSE(ValidateNetworkName("a/b"));
  EXPECT_FALSE(ValidateNetworkSubnet(*ParseCidr("10.0.0.0/30")));
  NetworkConfig c;
  c.name = "lab";
  c.subnet = *ParseCidr("10.9.0.0/24");
  c.nat = true;
  c.reservations = {{"52:54:00:00:00:01", "10.9.0.10"}};
  c.forwards = {{"udp", 5353, "vm1", 53}};
  auto back = NetworkConfigFromJson(ToJson(c));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->subnet, c.subnet);
  EXPECT_TRUE(back->nat);
  EXPECT_EQ(back->reservations[0].ip, "10.9.0.10");
  EXPECT_EQ(back->forwards[0].proto, "udp");
  EXPECT_EQ(back->Bridge(), "vbr-lab");
}

TEST(Nft, RulesetReplacesTableAtomically) {
  NetworkConfig nat;
  nat.name = "n1";
  nat.subnet = *ParseCidr("10.1.0.0/24");
  nat.nat = true;
  NetworkConfig plain;
  plain.name = "n2";
  plain.subnet = *ParseCidr("10.2.0.0/24");
  std::string r = BuildRuleset({nat, plain}, {{"tcp", 8080, "10.1.0.5", 80}});
  // Flushed and re-filled in one file: one nft transaction.
  EXPECT_EQ(r.find("add table inet vireo\nflush table inet vireo\n"), 0u);
  EXPECT_NE(r.find("ip saddr 10.1.0.0/24 ip daddr != 10.1.0.0/24 masquerade"),
            std::string::npos);
  EXPECT_EQ(r.find("10.2.0.0/24 masquerade"), std::string::npos);
  const std::string dnat =
      "fib daddr type local tcp dport 8080 dnat ip to 10.1.0.5:80";
  // Both for traffic from outside (prerouting) and from the host (output).
  size_t first = r.find(dnat);
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(r.find(dnat, first + 1), std::string::npos);
  EXPECT_NE(r.find("hook prerouting"), std::string::npos);
  EXPECT_NE(r.find("hook output"), std::string::npos);
  EXPECT_NE(r.find("iifname \"vbr-n1\" accept"), std::string::npos);
  EXPECT_EQ(r.find("iifname \"vbr-n2\" accept"), std::string::npos);
}

TEST(Dnsmasq, Argv) {
  NetworkConfig n;
  n.name = "lab";
  n.subnet = *ParseCidr("192.168.50.0/24");
  auto argv = DnsmasqArgv(n, DnsmasqPaths::In("/run/x"));
  auto has = [&](const std::string& a) {
    return std::find(argv.begin(), argv.end(), a) != argv.end();
  };
  EXPECT_EQ(argv[0], "dnsmasq");
  EXPECT_TRUE(has("--keep-in-foreground"));
  EXPECT_TRUE(has("--conf-file=/dev/null"));
  EXPECT_TRUE(has("--bind-interfaces"));
  EXPECT_TRUE(has("--interface=vbr-lab"));
  EXPECT_TRUE(has("--except-interface=lo"));
  EXPECT_TRUE(has("--dhcp-range=192.168.50.2,192.168.50.254,255.255.255.0,1h"));
  EXPECT_TRUE(has("--dhcp-leasefile=/run/x/dnsmasq.leases"));
  EXPECT_TRUE(has("--dhcp-hostsfile=/run/x/dnsmasq.hosts"));
  EXPECT_TRUE(has("--pid-file=/run/x/dnsmasq.pid"));
}

TEST(Dnsmasq, HostsAndLeases) {
  EXPECT_EQ(HostsFileText({{"52:54:00:00:00:01", "10.0.0.9", "vm1"},
                           {"52:54:00:00:00:02", "", "vm2"}}),
            "52:54:00:00:00:01,10.0.0.9,vm1\n52:54:00:00:00:02,vm2\n");
  auto leases = ParseLeases(
      "1700000000 52:54:00:00:00:01 10.0.0.9 vm1 01:52:54:00:00:00:01\n"
      "garbage line\n"
      "1700000001 52:54:00:00:00:02 10.0.0.300 * *\n"
      "1700000002 52:54:00:00:00:03 10.0.0.11 * *\n");
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].ip, "10.0.0.9");
  EXPECT_EQ(leases[0].hostname, "vm1");
  EXPECT_EQ(leases[1].mac, "52:54:00:00:00:03");
}

}  // namespace
}  // namespace vireo
