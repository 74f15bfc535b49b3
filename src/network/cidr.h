#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

// An IPv4 subnet: network address (host bits zero) and prefix length.
struct Ipv4Net {
  uint32_t addr = 0;  // host byte order
  int prefix = 0;
  uint32_t Mask() const {
    return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  }
  uint32_t Broadcast() const { return addr | ~Mask(); }
  // The bridge's own address: the first host address.
  uint32_t Gateway() const { return addr + 1; }
  bool Contains(uint32_t ip) const { return (ip & Mask()) == addr; }
  // A usable guest address: inside, and not network, gateway or broadcast.
  bool IsGuestAddress(uint32_t ip) const {
    return Contains(ip) && ip != addr && ip != Gateway() && ip != Broadcast();
  }
  bool Overlaps(const Ipv4Net& other) const;
  std::string ToString() const;  // "10.0.0.0/24"
  bool operator==(const Ipv4Net&) const = default;
};

Result<uint32_t> ParseIpv4(std::string_view text);
std::string FormatIpv4(uint32_t ip);
// "a.b.c.d/n". With strict, host bits must be zero (a network, not an
// address in it); otherwise they are masked off (routes, addresses).
Result<Ipv4Net> ParseCidr(std::string_view text, bool strict = true);
// "52:54:00:AB:cd:01" -> "52:54:00:ab:cd:01"; a unicast MAC or an error.
Result<std::string> NormalizeMac(std::string_view text);

}  // namespace vireo
