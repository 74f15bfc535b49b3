#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/process.h"
#include "network/network_config.h"

namespace vireo {

// Files of one network's dnsmasq, all under one runtime directory.
struct DnsmasqPaths {
  std::string dir;
  std::string pid_file;
  std::string lease_file;
  std::string hosts_file;  // dhcp-hostsfile: static MAC -> IP (and name)
  std::string log_file;
  static DnsmasqPaths In(const std::string& dir);
};

// One static DHCP host: MAC, optional IP, optional hostname.
struct DhcpHost {
  std::string mac;
  std::string ip;
  std::string hostname;
};

struct Lease {
  int64_t expiry = 0;
  std::string mac;
  std::string ip;
  std::string hostname;  // "*" when the client sent none
};

std::vector<std::string> DnsmasqArgv(const NetworkConfig& network,
                                     const DnsmasqPaths& paths);
// dhcp-hostsfile lines ("mac,ip,name"), re-read by dnsmasq on SIGHUP.
std::string HostsFileText(const std::vector<DhcpHost>& hosts);
// Parses dnsmasq's lease file; malformed lines are skipped.
std::vector<Lease> ParseLeases(const std::string& text);

// A supervised dnsmasq for one network. Stop() kills it; destruction does
// too (the daemon restarts it on its next start, keeping the lease file).
class Dnsmasq {
 public:
  // Replaces a stale dnsmasq of an earlier vireod (same pid file) and starts
  // a new one.
  static Result<std::unique_ptr<Dnsmasq>> Start(const NetworkConfig& network,
                                                const DnsmasqPaths& paths);
  ~Dnsmasq();
  // Restarts the process if it died. Returns false if it had to.
  bool EnsureRunning();
  // Re-reads the hosts file (SIGHUP).
  void Reload();
  void Stop();

 private:
  Dnsmasq(NetworkConfig network, DnsmasqPaths paths)
      : network_(std::move(network)), paths_(std::move(paths)) {}
  Status Spawn();
  NetworkConfig network_;
  DnsmasqPaths paths_;
  std::unique_ptr<Process> process_;
};

}  // namespace vireo
