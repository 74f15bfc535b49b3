#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "network/cidr.h"

namespace vireo {

// A static DHCP reservation made on the network itself (instances' own
// "ip" reservations live in their NIC config).
struct Reservation {
  std::string mac;  // normalized
  std::string ip;
};

// Host port -> instance port, on the host's addresses.
struct PortForward {
  std::string proto = "tcp";  // "tcp" or "udp"
  int host_port = 0;
  std::string instance;
  int port = 0;
};

// A managed network as stored (kind "network").
struct NetworkConfig {
  std::string name;
  Ipv4Net subnet;
  bool nat = false;
  bool isolated = false;  // guests cannot reach each other, only the host
  std::vector<Reservation> reservations;
  std::vector<PortForward> forwards;
  int64_t created_at = 0;

  std::string Bridge() const { return "vbr-" + name; }
};

inline constexpr size_t kMaxNetworkName = 11;  // "vbr-" + name fits IFNAMSIZ

// 1-11 characters of [a-z0-9-], starting with a letter (it names a bridge).
Status ValidateNetworkName(const std::string& name);
// Valid subnet for a network: prefix 8..29 (room for guests).
Status ValidateNetworkSubnet(const Ipv4Net& subnet);
Result<int> ParsePort(const Json& value, const std::string& field);
Status ValidateProto(const std::string& proto);

Json ToJson(const NetworkConfig& config);
Result<NetworkConfig> NetworkConfigFromJson(const Json& j);

}  // namespace vireo
