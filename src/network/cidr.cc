#include "network/cidr.h"

#include <charconv>
#include <cstdio>

namespace vireo {

namespace {
Result<int> ParseNumber(std::string_view text, int max, std::string_view what) {
  int value = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 3 || ec != std::errc() ||
      end != text.data() + text.size() || value < 0 || value > max)
    return Err(ErrorCode::kInvalidArgument,
               "invalid " + std::string(what) + " '" + std::string(text) + "'");
  return value;
}
}  // namespace

bool Ipv4Net::Overlaps(const Ipv4Net& other) const {
  uint32_t mask = prefix < other.prefix ? Mask() : other.Mask();
  return (addr & mask) == (other.addr & mask);
}

std::string Ipv4Net::ToString() const {
  return FormatIpv4(addr) + "/" + std::to_string(prefix);
}

Result<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t ip = 0;
  std::string_view rest = text;
  for (int i = 0; i < 4; ++i) {
    size_t dot = rest.find('.');
    if ((i < 3) == (dot == std::string_view::npos))
      return Err(ErrorCode::kInvalidArgument,
                 "invalid IPv4 address '" + std::string(text) + "'");
    auto octet = ParseNumber(rest.substr(0, dot), 255, "IPv4 address octet");
    if (!octet)
      return Err(ErrorCode::kInvalidArgument,
                 "invalid IPv4 address '" + std::string(text) + "'");
    ip = (ip << 8) | static_cast<uint32_t>(*octet);
    rest = dot == std::string_view::npos ? "" : rest.substr(dot + 1);
  }
  return ip;
}

std::string FormatIpv4(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255,
                (ip >> 8) & 255, ip & 255);
  return buf;
}

Result<Ipv4Net> ParseCidr(std::string_view text, bool strict) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos)
    return Err(
        ErrorCode::kInvalidArgument,
        "invalid subnet '" + std::string(text) + "': expected a.b.c.d/prefix");
  ASSIGN_OR_RETURN(uint32_t ip, ParseIpv4(text.substr(0, slash)));
  ASSIGN_OR_RETURN(int prefix,
                   ParseNumber(text.substr(slash + 1), 32, "prefix length"));
  Ipv4Net net{ip, prefix};
  net.addr = ip & net.Mask();
  if (strict && net.addr != ip)
    return Err(ErrorCode::kInvalidArgument,
               "subnet '" + std::string(text) +
                   "' has host bits set (did you mean " + net.ToString() +
                   "?)");
  return net;
}

Result<std::string> NormalizeMac(std::string_view text) {
  auto bad = [&] {
    return Err(ErrorCode::kInvalidArgument,
               "invalid MAC address '" + std::string(text) +
                   "': expected six hex bytes like 52:54:00:12:34:56");
  };
  if (text.size() != 17) return bad();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i % 3 == 2) {
      if (c != ':') return bad();
      out.push_back(':');
      continue;
    }
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad();
    out.push_back(c);
  }
  int first = std::stoi(out.substr(0, 2), nullptr, 16);
  if (first & 1)
    return Err(ErrorCode::kInvalidArgument,
               "MAC address '" + std::string(text) + "' is multicast");
  if (out == "00:00:00:00:00:00")
    return Err(ErrorCode::kInvalidArgument, "MAC address is all zeros");
  return out;
}

}  // namespace vireo
