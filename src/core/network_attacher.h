#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "core/instance.h"

namespace vireo {

struct CreateRequest;

// What the instance core needs from managed networks (implemented by
// network/NetworkService), so core does not depend on bridges or dnsmasq.
class NetworkAttacher {
 public:
  virtual ~NetworkAttacher() = default;
  // The network NICs go on when a create names none ("" = user-mode NICs).
  virtual std::string DefaultNetwork() = 0;
  // Checks a new instance's NICs: networks exist, MACs and IPs are valid,
  // inside the subnet and not taken. Changes nothing.
  [[nodiscard]] virtual Status CheckNics(
      const std::vector<NicConfig>& nics) = 0;
  // Creates one tap per "network" NIC (in NIC order), attached to its
  // network's bridge. The taps vanish when the last fd (QEMU's) closes.
  [[nodiscard]] virtual Result<std::vector<UniqueFd>> PrepareTaps(
      const Instance& instance) = 0;
  // The NIC's IPv4 address from its reservation or DHCP lease, "" if none.
  virtual std::string AddressOf(const NicConfig& nic) = 0;
};

// The NICs a create request asks for: managed-network NICs, else `nics`
// NICs on the default network, else user-mode NICs. MACs are generated
// where none was given.
std::vector<NicConfig> BuildNics(const CreateRequest& request,
                                 const std::string& default_network);

}  // namespace vireo
