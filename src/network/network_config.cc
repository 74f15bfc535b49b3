#include "network/network_config.h"

namespace vireo {

Status ValidateNetworkName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxNetworkName && name[0] >= 'a' &&
            name[0] <= 'z' && name.back() != '-';
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok)
    return Err(ErrorCode::kInvalidArgument,
               "invalid network name '" + name +
                   "': 1-11 characters of a-z, 0-9 and '-', starting with a "
                   "letter");
  return Ok();
}

Status ValidateNetworkSubnet(const Ipv4Net& subnet) {
  if (subnet.prefix < 8 || subnet.prefix > 29)
    return Err(ErrorCode::kInvalidArgument,
               "subnet " + subnet.ToString() +
                   ": prefix length must be between 8 and 29");
  return Ok();
}

Result<int> ParsePort(const Json& value, const std::string& field) {
  if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
      value.get<int64_t>() > 65535)
    return Err(ErrorCode::kInvalidArgument,
               field + " must be a port number 1-65535");
  return value.get<int>();
}

Status ValidateProto(const std::string& proto) {
  if (proto != "tcp" && proto != "udp")
    return Err(ErrorCode::kInvalidArgument,
               "protocol must be tcp or udp, not '" + proto + "'");
  return Ok();
}

Json ToJson(const NetworkConfig& c) {
  Json reservations = Json::array();
  for (const auto& r : c.reservations)
    reservations.push_back({{"mac", r.mac}, {"ip", r.ip}});
  Json forwards = Json::array();
  for (const auto& f : c.forwards)
    forwards.push_back({{"proto", f.proto},
                        {"host_port", f.host_port},
                        {"instance", f.instance},
                        {"port", f.port}});
  return {{"name", c.name},
          {"subnet", c.subnet.ToString()},
          {"gateway", FormatIpv4(c.subnet.Gateway())},
          {"bridge", c.Bridge()},
          {"nat", c.nat},
          {"isolated", c.isolated},
          {"reservations", reservations},
          {"forwards", forwards},
          {"created_at", c.created_at}};
}

Result<NetworkConfig> NetworkConfigFromJson(const Json& j) {
  try {
    NetworkConfig c;
    c.name = j.at("name").get<std::string>();
    ASSIGN_OR_RETURN(c.subnet, ParseCidr(j.at("subnet").get<std::string>()));
    c.nat = j.value("nat", false);
    c.isolated = j.value("isolated", false);
    c.created_at = j.value("created_at", int64_t{0});
    for (const auto& r : j.value("reservations", Json::array()))
      c.reservations.push_back(
          {r.at("mac").get<std::string>(), r.at("ip").get<std::string>()});
    for (const auto& f : j.value("forwards", Json::array()))
      c.forwards.push_back(
          {f.at("proto").get<std::string>(), f.at("host_port").get<int>(),
           f.at("instance").get<std::string>(), f.at("port").get<int>()});
    return c;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("stored network is malformed: ") + e.what());
  }
}

}  // namespace vireo
