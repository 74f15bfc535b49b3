#pragma once

#include <string>
#include <vector>

#include "network/network_config.h"

namespace vireo {

inline constexpr const char* kNftTable = "vireo";  // "table inet vireo"

// A port forward whose target address is known (from a reservation or a
// DHCP lease).
struct ResolvedForward {
  std::string proto;
  int host_port = 0;
  std::string target_ip;
  int port = 0;
};

// The whole "table inet vireo" as an `nft -f` script that replaces the
// previous contents in one transaction: masquerade for NAT networks,
// DNAT for forwards (prerouting for outside traffic, output for the host's
// own connections), and forward-chain accepts for the bridges.
std::string BuildRuleset(const std::vector<NetworkConfig>& networks,
                         const std::vector<ResolvedForward>& forwards);

}  // namespace vireo
