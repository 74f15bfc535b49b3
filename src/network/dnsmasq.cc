#include "network/dnsmasq.h"

#include <signal.h>

#include <fstream>
#include <sstream>

#include "common/log.h"

namespace vireo {

namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Kills a dnsmasq left by an earlier vireod, if the pid file still names
// one serving this network's bridge (pids are reused).
void KillStale(const DnsmasqPaths& paths, const std::string& bridge) {
  std::string text = ReadSmallFile(paths.pid_file);
  int pid = std::atoi(text.c_str());
  if (pid <= 1) return;
  std::string cmdline =
      ReadSmallFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (cmdline.find("dnsmasq") == std::string::npos ||
      cmdline.find("--interface=" + bridge + '\0') == std::string::npos)
    return;
  auto proc = Process::Adopt(pid);
  if (!proc) return;
  LOG_INFO("network: replacing dnsmasq pid {} of an earlier vireod", pid);
  (*proc)->Signal(SIGTERM);
  if (!(*proc)->WaitFor(std::chrono::milliseconds(3000))) {
    (*proc)->Signal(SIGKILL);
    (void)(*proc)->WaitFor(std::chrono::milliseconds(3000));
  }
}

}  // namespace

DnsmasqPaths DnsmasqPaths::In(const std::string& dir) {
  return {dir, dir + "/dnsmasq.pid", dir + "/dnsmasq.leases",
          dir + "/dnsmasq.hosts", dir + "/dnsmasq.log"};
}

std::vector<std::string> DnsmasqArgv(const NetworkConfig& n,
                                     const DnsmasqPaths& p) {
  const Ipv4Net& s = n.subnet;
  std::string gateway = FormatIpv4(s.Gateway());
  return {
      "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
      "--bind-interfaces", "--interface=" + n.Bridge(), "--except-interface=lo",
      "--listen-address=" + gateway, "--strict-order", "--no-hosts",
      "--domain-needed", "--dhcp-authoritative", "--dhcp-no-override",
      // Guests' names resolve (from their DHCP requests and the hosts file).
      "--domain=" + n.name + ".vireo", "--local=/" + n.name + ".vireo/",
      "--expand-hosts",
      "--dhcp-range=" + FormatIpv4(s.Gateway() + 1) + "," +
          FormatIpv4(s.Broadcast() - 1) + "," + FormatIpv4(s.Mask()) + ",1h",
      "--dhcp-option=option:router," + gateway,
      "--dhcp-option=option:dns-server," + gateway,
      "--dhcp-leasefile=" + p.lease_file, "--dhcp-hostsfile=" + p.hosts_file,
      "--pid-file=" + p.pid_file,
      "--log-facility=-",  // our log file, not syslog
  };
}

std::string HostsFileText(const std::vector<DhcpHost>& hosts) {
  std::string out;
  for (const auto& h : hosts) {
    out += h.mac;
    if (!h.ip.empty()) out += "," + h.ip;
    if (!h.hostname.empty()) out += "," + h.hostname;
    out += "\n";
  }
  return out;
}

std::vector<Lease> ParseLeases(const std::string& text) {
  std::vector<Lease> leases;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Lease l;
    std::string expiry;
    if (!(fields >> expiry >> l.mac >> l.ip >> l.hostname)) continue;
    try {
      l.expiry = std::stoll(expiry);
    } catch (const std::exception&) {
      continue;
    }
    if (!ParseIpv4(l.ip) || !NormalizeMac(l.mac)) continue;
    leases.push_back(std::move(l));
  }
  return leases;
}

Result<std::unique_ptr<Dnsmasq>> Dnsmasq::Start(const NetworkConfig& network,
                                                const DnsmasqPaths& paths) {
  KillStale(paths, network.Bridge());
  auto d = std::unique_ptr<Dnsmasq>(new Dnsmasq(network, paths));
  TRY(d->Spawn());
  return d;
}

Status Dnsmasq::Spawn() {
  SpawnOptions so;
  so.argv = DnsmasqArgv(network_, paths_);
  so.stdout_path = paths_.log_file;
  so.stderr_path = paths_.log_file;
  ASSIGN_OR_RETURN(process_, Process::Spawn(so));
  // dnsmasq fails fast on a bad config or a busy port; report that here
  // instead of through a restart loop.
  if (auto status = process_->WaitFor(std::chrono::milliseconds(300))) {
    process_.reset();
    std::string log = ReadSmallFile(paths_.log_file);
    if (log.size() > 400) log = log.substr(log.size() - 400);
    return Err(ErrorCode::kIo, "dnsmasq for network '" + network_.name + "' " +
                                   status->Describe() + ": " + log);
  }
  LOG_INFO("network {}: dnsmasq pid {}", network_.name, process_->pid());
  return Ok();
}

Dnsmasq::~Dnsmasq() { Stop(); }

bool Dnsmasq::EnsureRunning() {
  if (process_ && !process_->WaitFor(std::chrono::milliseconds(0))) return true;
  LOG_WARN("network {}: dnsmasq exited; restarting", network_.name);
  process_.reset();
  if (auto st = Spawn(); !st)
    LOG_ERROR("network {}: {}", network_.name, st.error().ToString());
  return false;
}

void Dnsmasq::Reload() {
  if (process_) process_->Signal(SIGHUP);
}

void Dnsmasq::Stop() {
  if (!process_) return;
  process_->Signal(SIGTERM);
  if (!process_->WaitFor(std::chrono::milliseconds(3000))) {
    process_->Signal(SIGKILL);
    (void)process_->WaitFor(std::chrono::milliseconds(3000));
  }
  process_.reset();
}

}  // namespace vireo
