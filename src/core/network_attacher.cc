#include "core/network_attacher.h"

#include "common/random.h"
#include "core/instance_service.h"

namespace vireo {

namespace {
std::string RandomMac() {
  std::string hex = RandomHex(3);
  return "52:54:00:" + hex.substr(0, 2) + ":" + hex.substr(2, 2) + ":" +
         hex.substr(4, 2);
}
}  // namespace

std::vector<NicConfig> BuildNics(const CreateRequest& request,
                                 const std::string& default_network) {
  std::vector<NicConfig> nics;
  auto add = [&](const std::string& network, const std::string& mac,
                 const std::string& ip) {
    NicConfig nic;
    nic.name = "eth" + std::to_string(nics.size());
    nic.mac = mac.empty() ? RandomMac() : mac;
    if (!network.empty()) {
      nic.type = "network";
      nic.network = network;
      nic.ip = ip;
    }
    nics.push_back(std::move(nic));
  };
  if (!request.networks.empty()) {
    for (const auto& n : request.networks) add(n.network, n.mac, n.ip);
  } else {
    for (int i = 0; i < request.nics; ++i) add(default_network, "", "");
  }
  return nics;
}

}  // namespace vireo
