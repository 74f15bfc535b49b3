#include "network/nft_ruleset.h"

namespace vireo {

std::string BuildRuleset(const std::vector<NetworkConfig>& networks,
                         const std::vector<ResolvedForward>& forwards) {
  const std::string table = std::string("inet ") + kNftTable;
  // "add" makes the flush valid on a first run; the file is one transaction.
  std::string out = "add table " + table + "\nflush table " + table +
                    "\ntable " + table + " {\n";
  std::string dnat;
  for (const auto& f : forwards) {
    dnat += "    fib daddr type local " + f.proto + " dport " +
            std::to_string(f.host_port) + " dnat ip to " + f.target_ip + ":" +
            std::to_string(f.port) + "\n";
  }
  out +=
      "  chain prerouting {\n    type nat hook prerouting priority dstnat; "
      "policy accept;\n" +
      dnat + "  }\n";
  out +=
      "  chain output {\n    type nat hook output priority -100; "
      "policy accept;\n" +
      dnat + "  }\n";
  out +=
      "  chain postrouting {\n    type nat hook postrouting priority srcnat; "
      "policy accept;\n";
  for (const auto& n : networks) {
    if (!n.nat) continue;
    std::string s = n.subnet.ToString();
    out += "    ip saddr " + s + " ip daddr != " + s + " masquerade\n";
  }
  out += "  }\n";
  out +=
      "  chain forward {\n    type filter hook forward priority filter; "
      "policy accept;\n";
  for (const auto& n : networks) {
    std::string br = "\"" + n.Bridge() + "\"";
    if (n.nat) {
      out += "    iifname " + br + " accept\n";
      out += "    oifname " + br + " ct state established,related accept\n";
    }
    out += "    oifname " + br + " ct status dnat accept\n";
  }
  out += "  }\n}\n";
  return out;
}

}  // namespace vireo
