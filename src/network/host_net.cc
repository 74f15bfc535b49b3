#include "network/host_net.h"

#include <fcntl.h>
#include <net/if.h>
// After net/if.h: it declares struct ifreq that if_tun.h needs.
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/process.h"

namespace vireo {

bool LinkExists(const std::string& name) {
  return ::if_nametoindex(name.c_str()) != 0;
}

Status EnsureBridge(const std::string& bridge, const std::string& address) {
  if (!LinkExists(bridge))
    TRY_CTX(RunCommandOk({"ip", "link", "add", bridge, "type", "bridge"}),
            "create bridge " + bridge);
  // "replace" is idempotent across restarts.
  TRY_CTX(RunCommandOk({"ip", "addr", "replace", address, "dev", bridge}),
          "address bridge " + bridge);
  TRY_CTX(RunCommandOk({"ip", "link", "set", bridge, "up"}),
          "bring up bridge " + bridge);
  return Ok();
}

Status DeleteLink(const std::string& name) {
  if (!LinkExists(name)) return Ok();
  TRY_CTX(RunCommandOk({"ip", "link", "del", name}), "delete link " + name);
  return Ok();
}

Result<UniqueFd> CreateTap(const std::string& name) {
  if (name.size() >= IFNAMSIZ)
    return Err(ErrorCode::kInvalidArgument, "tap name too long: " + name);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return ErrnoErr("open /dev/net/tun");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    return ErrnoErr("create tap " + name);
  return fd;
}

Status AttachTap(const std::string& tap, const std::string& bridge,
                 bool isolated) {
  TRY_CTX(RunCommandOk({"ip", "link", "set", tap, "master", bridge}),
          "attach " + tap + " to " + bridge);
  if (isolated)
    TRY_CTX(RunCommandOk({"ip", "link", "set", tap, "type", "bridge_slave",
                          "isolated", "on"}),
            "isolate " + tap);
  TRY_CTX(RunCommandOk({"ip", "link", "set", tap, "up"}), "bring up " + tap);
  return Ok();
}

Result<std::vector<Ipv4Net>> HostSubnets(const std::string& ignore_prefix) {
  std::vector<Ipv4Net> out;
  auto skip = [&](const std::string& line) {
    return line.find("dev " + ignore_prefix) != std::string::npos ||
           line.find(": " + ignore_prefix) != std::string::npos;
  };
  ASSIGN_OR_RETURN(std::string routes, RunCommandOk({"ip", "-4", "route",
                                                     "show", "table", "main"}));
  std::istringstream rs(routes);
  for (std::string line; std::getline(rs, line);) {
    if (skip(line)) continue;
    std::string dst = line.substr(0, line.find(' '));
    if (dst == "default") continue;
    if (dst.find('/') == std::string::npos) dst += "/32";
    if (auto net = ParseCidr(dst, false)) out.push_back(*net);
  }
  ASSIGN_OR_RETURN(std::string addrs,
                   RunCommandOk({"ip", "-4", "-o", "addr", "show"}));
  std::istringstream as(addrs);
  for (std::string line; std::getline(as, line);) {
    if (skip(line)) continue;
    size_t at = line.find(" inet ");
    if (at == std::string::npos) continue;
    std::string cidr = line.substr(at + 6);
    cidr = cidr.substr(0, cidr.find(' '));
    if (auto net = ParseCidr(cidr, false)) out.push_back(*net);
  }
  return out;
}

Status ApplyNftRuleset(const std::string& script) {
  char path[] = "/tmp/vireo-nft-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return ErrnoErr("mkstemp");
  UniqueFd owned(fd);
  bool ok = ::write(fd, script.data(), script.size()) ==
            static_cast<ssize_t>(script.size());
  owned.Reset();
  auto result = ok ? RunCommandOk({"nft", "-f", path})
                   : Result<std::string>(ErrnoErr("write nft script"));
  ::unlink(path);
  TRY_CTX(result, "apply nftables rules");
  return Ok();
}

Status DeleteNftTable(const std::string& family_and_name) {
  std::istringstream words(family_and_name);
  std::string family, name;
  words >> family >> name;
  auto listed = RunCommand({"nft", "list", "table", family, name});
  if (!listed || !listed->status.success()) return Ok();  // already gone
  TRY_CTX(RunCommandOk({"nft", "delete", "table", family, name}),
          "delete nft table");
  return Ok();
}

Status EnableIpForwarding() {
  std::ofstream f("/proc/sys/net/ipv4/ip_forward");
  f << "1\n";
  f.close();
  if (!f) return ErrnoErr("enable net.ipv4.ip_forward");
  return Ok();
}

}  // namespace vireo
