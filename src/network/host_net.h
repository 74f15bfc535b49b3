#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "network/cidr.h"

namespace vireo {

// Host networking done with the system's tools (iproute2, nft) and the tun
// driver. Every function is idempotent where that makes recovery simpler.

bool LinkExists(const std::string& name);
// Creates (or reuses) a bridge with `address` (e.g. gateway/24) and brings it
// up.
Status EnsureBridge(const std::string& bridge, const std::string& address);
Status DeleteLink(const std::string& name);
// Opens a new tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR). It is not
// persistent: it disappears when the last fd closes.
Result<UniqueFd> CreateTap(const std::string& name);
// Enslaves the tap to the bridge and brings it up; with isolated, the port
// may only talk to non-isolated ports (the bridge itself, i.e. the host).
Status AttachTap(const std::string& tap, const std::string& bridge,
                 bool isolated);
// IPv4 routes and addresses on the host, except those on `ignore_prefix`
// links (our own bridges).
Result<std::vector<Ipv4Net>> HostSubnets(const std::string& ignore_prefix);
// Applies an `nft -f` script atomically.
Status ApplyNftRuleset(const std::string& script);
Status DeleteNftTable(const std::string& family_and_name);
Status EnableIpForwarding();

}  // namespace vireo
